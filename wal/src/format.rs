//! On-disk layout: file names, segment header, record frame and snapshot file encoding.
//!
//! Everything here is pure (no I/O) and explicitly little-endian; `wal/FORMAT.md` describes
//! the same layout byte by byte. Nothing on disk is a `usize`.

use crate::Lsn;

/// First 8 bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"OMSWALSG";
/// Version of the segment and record layout, written after the magic.
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Size of the segment header: magic 8, version 4, reserved 4, first LSN 8, CRC 4, reserved 4.
pub(crate) const SEGMENT_HEADER_BYTES: usize = 32;
/// Size of a record frame header: length 4, CRC 4, LSN 8.
pub(crate) const RECORD_HEADER_BYTES: usize = 16;

/// First 8 bytes of every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"OMSWALSN";
/// Version of the snapshot file layout.
pub(crate) const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Size of the snapshot header: magic 8, version 4, CRC 4, next LSN 8, blob length 8.
pub(crate) const SNAPSHOT_HEADER_BYTES: usize = 32;

const SEGMENT_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".log";
const SNAPSHOT_PREFIX: &str = "snap-";
const SNAPSHOT_SUFFIX: &str = ".snap";
/// Suffix of a snapshot being written; such files are leftovers of a crash and are removed.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// `wal-<first LSN, 20 digits>.log`; the fixed width makes lexical order equal LSN order.
pub(crate) fn segment_name(first_lsn: Lsn) -> String {
    format!("{SEGMENT_PREFIX}{first_lsn:020}{SEGMENT_SUFFIX}")
}

/// `snap-<next LSN, 20 digits>.snap`.
pub(crate) fn snapshot_name(next_lsn: Lsn) -> String {
    format!("{SNAPSHOT_PREFIX}{next_lsn:020}{SNAPSHOT_SUFFIX}")
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The first LSN encoded in a segment file name, if `name` is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<Lsn> {
    parse_numbered(name, SEGMENT_PREFIX, SEGMENT_SUFFIX)
}

/// The next LSN encoded in a snapshot file name, if `name` is one.
pub(crate) fn parse_snapshot_name(name: &str) -> Option<Lsn> {
    parse_numbered(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Encodes the header that opens a segment whose first record will have `first_lsn`.
pub(crate) fn encode_segment_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_BYTES] {
    assert!(first_lsn >= 1, "LSNs start at 1");
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    // Bytes 12..16 are reserved and zero.
    header[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    // Bytes 28..32 are reserved and zero.
    header
}

/// Decodes a segment header, returning its first LSN or what is wrong with it.
pub(crate) fn decode_segment_header(header: &[u8]) -> Result<Lsn, String> {
    assert_eq!(header.len(), SEGMENT_HEADER_BYTES);
    if header[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    let crc_stored = u32_at(header, 24);
    let crc_computed = crc32c::crc32c(&header[0..24]);
    if crc_stored != crc_computed {
        return Err(format!(
            "segment header checksum mismatch (stored {crc_stored:#010x}, computed {crc_computed:#010x})"
        ));
    }
    let version = u32_at(header, 8);
    if version != SEGMENT_FORMAT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    let first_lsn = u64_at(header, 16);
    if first_lsn == 0 {
        return Err("segment header first LSN is 0".into());
    }
    Ok(first_lsn)
}

/// CRC32C of a record: over the LSN (8 bytes LE), then the length (4 bytes LE), then the payload.
pub(crate) fn record_crc(lsn: Lsn, payload: &[u8]) -> u32 {
    let len = u32::try_from(payload.len()).expect("record length fits u32");
    let crc = crc32c::crc32c(&lsn.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &len.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

/// Appends the frame of one record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    assert!(lsn >= 1, "LSNs start at 1");
    let len = u32::try_from(payload.len()).expect("record length fits u32");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(lsn, payload).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The decoded fixed part of a record frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Payload length in bytes.
    pub(crate) payload_bytes: u32,
    /// Stored CRC32C.
    pub(crate) crc: u32,
    /// Stored LSN.
    pub(crate) lsn: Lsn,
}

/// Decodes the 16-byte record header (no validation beyond the layout).
pub(crate) fn decode_record_header(bytes: &[u8]) -> RecordHeader {
    assert!(bytes.len() >= RECORD_HEADER_BYTES);
    RecordHeader {
        payload_bytes: u32_at(bytes, 0),
        crc: u32_at(bytes, 4),
        lsn: u64_at(bytes, 8),
    }
}

/// Bytes a record of `payload_bytes` takes on disk.
pub(crate) fn record_frame_bytes(payload_bytes: usize) -> usize {
    RECORD_HEADER_BYTES + payload_bytes
}

/// Encodes a complete snapshot file.
pub(crate) fn encode_snapshot(next_lsn: Lsn, blob: &[u8]) -> Vec<u8> {
    assert!(next_lsn >= 1, "LSNs start at 1");
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + blob.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // CRC, filled in below.
    out.extend_from_slice(&next_lsn.to_le_bytes());
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    out.extend_from_slice(blob);
    let crc = snapshot_crc(&out);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out
}

/// CRC32C over the version (bytes 8..12), then next LSN, blob length and blob (bytes 16..).
fn snapshot_crc(file: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&file[8..12]);
    crc32c::crc32c_append(crc, &file[16..])
}

/// Decodes and verifies a snapshot file, returning `(next_lsn, blob)` or what is wrong.
pub(crate) fn decode_snapshot(file: &[u8]) -> Result<(Lsn, &[u8]), String> {
    if file.len() < SNAPSHOT_HEADER_BYTES {
        return Err(format!(
            "snapshot file is {} bytes, shorter than its header",
            file.len()
        ));
    }
    if file[0..8] != SNAPSHOT_MAGIC {
        return Err("bad snapshot magic".into());
    }
    let version = u32_at(file, 8);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(format!("unsupported snapshot format version {version}"));
    }
    let next_lsn = u64_at(file, 16);
    let blob_bytes = u64_at(file, 24);
    let blob_bytes_actual = (file.len() - SNAPSHOT_HEADER_BYTES) as u64;
    if blob_bytes != blob_bytes_actual {
        return Err(format!(
            "snapshot blob length {blob_bytes} does not match the {blob_bytes_actual} bytes present"
        ));
    }
    let crc_stored = u32_at(file, 12);
    let crc_computed = snapshot_crc(file);
    if crc_stored != crc_computed {
        return Err(format!(
            "snapshot checksum mismatch (stored {crc_stored:#010x}, computed {crc_computed:#010x})"
        ));
    }
    if next_lsn == 0 {
        return Err("snapshot next LSN is 0".into());
    }
    Ok((next_lsn, &file[SNAPSHOT_HEADER_BYTES..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_rejects_a_flipped_bit() {
        let mut header = encode_segment_header(42);
        assert_eq!(decode_segment_header(&header), Ok(42));
        header[17] ^= 1;
        assert!(decode_segment_header(&header).is_err());
    }

    #[test]
    fn record_frame_is_little_endian_with_crc_over_lsn_length_payload() {
        let mut out = Vec::new();
        encode_record(&mut out, 7, b"abc");
        assert_eq!(&out[0..4], &[3, 0, 0, 0]);
        assert_eq!(&out[8..16], &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&out[16..], b"abc");
        let mut crc_input = Vec::new();
        crc_input.extend_from_slice(&7u64.to_le_bytes());
        crc_input.extend_from_slice(&3u32.to_le_bytes());
        crc_input.extend_from_slice(b"abc");
        assert_eq!(decode_record_header(&out).crc, crc32c::crc32c(&crc_input));
    }

    #[test]
    fn snapshot_round_trips_and_rejects_truncation() {
        let file = encode_snapshot(9, b"state");
        assert_eq!(decode_snapshot(&file), Ok((9, &b"state"[..])));
        assert!(decode_snapshot(&file[..file.len() - 1]).is_err());
    }

    #[test]
    fn names_parse_back_and_sort_by_lsn() {
        assert_eq!(parse_segment_name(&segment_name(123)), Some(123));
        assert_eq!(parse_snapshot_name(&snapshot_name(5)), Some(5));
        assert_eq!(parse_segment_name("wal-12.log"), None);
        assert!(segment_name(9) < segment_name(10));
    }
}
