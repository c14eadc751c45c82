//! Segment files: a buffered cursor over one segment's records (used by recovery and by
//! readers) and the creation of a new segment. The open-time scan is in `recovery.rs`.

use crate::format::{
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, decode_record_header, decode_segment_header, encode_segment_header,
    record_crc, segment_name,
};
use crate::storage::Storage;
use crate::{Lsn, WalError};

/// Bytes read from a segment per storage call while scanning or replaying.
const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// One segment as the log knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// LSN of the segment's first record (also in its name and header).
    pub(crate) first_lsn: Lsn,
    /// File name.
    pub(crate) name: String,
}

/// What the cursor found at its position.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A record whose frame and checksum are valid. `offset` is where its frame starts.
    Record { lsn: Lsn, offset: u64, payload: &'a [u8] },
    /// The clean end of the file.
    End,
    /// Damaged or incomplete data at `offset`.
    Invalid { offset: u64, reason: String },
}

/// A forward-only reader over one segment file that reads in chunks of `READ_CHUNK_BYTES`.
#[derive(Debug)]
pub(crate) struct SegmentCursor {
    name: String,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    /// Index in `buf` of the cursor position.
    pos: usize,
    eof: bool,
    /// File length when the cursor was opened. Reads stop there: recovery reads a file nobody
    /// writes, and a reader only needs records that were durable before it was opened.
    file_len: u64,
}

impl SegmentCursor {
    pub(crate) fn open(storage: &dyn Storage, name: &str) -> Result<SegmentCursor, WalError> {
        let file_len = storage
            .file_len(name)
            .map_err(|e| WalError::io("file_len", storage.path(name), &e))?;
        Ok(SegmentCursor {
            name: name.to_string(),
            buf: Vec::new(),
            buf_offset: 0,
            pos: 0,
            eof: false,
            file_len,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// File offset of the cursor.
    pub(crate) fn offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Tries to make `n` bytes available at the cursor; returns how many are (fewer only at
    /// the end of the file).
    fn fill(&mut self, storage: &dyn Storage, n: usize) -> Result<usize, WalError> {
        while self.available() < n && !self.eof {
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.buf_offset += self.pos as u64;
                self.pos = 0;
            }
            let old_len = self.buf.len();
            let unread_bytes = self.file_len.saturating_sub(self.buf_offset + old_len as u64);
            if unread_bytes == 0 {
                self.eof = true;
                break;
            }
            // Zeroing the buffer before reading costs as much as the read: size it to the file.
            let want = (n - old_len)
                .max(READ_CHUNK_BYTES)
                .min(usize::try_from(unread_bytes).unwrap_or(usize::MAX));
            self.buf.resize(old_len + want, 0);
            let got = storage
                .read_at(&self.name, self.buf_offset + old_len as u64, &mut self.buf[old_len..])
                .map_err(|e| WalError::io("read", storage.path(&self.name), &e))?;
            self.buf.truncate(old_len + got);
            if got == 0 {
                self.eof = true;
            }
        }
        Ok(self.available().min(n))
    }

    /// Reads and checks the segment header, returning its first LSN. `Ok(None)` means the file
    /// is shorter than a header (possible only for a segment torn while being created).
    pub(crate) fn read_header(&mut self, storage: &dyn Storage) -> Result<Option<Lsn>, WalError> {
        assert_eq!(self.offset(), 0, "the header is read first");
        if self.fill(storage, SEGMENT_HEADER_BYTES)? < SEGMENT_HEADER_BYTES {
            return Ok(None);
        }
        let header = &self.buf[self.pos..self.pos + SEGMENT_HEADER_BYTES];
        let first_lsn = decode_segment_header(header).map_err(|reason| WalError::Corrupt {
            segment: storage.path(&self.name),
            offset: 0,
            reason,
        })?;
        self.pos += SEGMENT_HEADER_BYTES;
        Ok(Some(first_lsn))
    }

    /// Decodes the record at the cursor and moves past it if it is valid.
    pub(crate) fn next_record(
        &mut self,
        storage: &dyn Storage,
        record_size_bytes_max: u32,
    ) -> Result<Step<'_>, WalError> {
        let offset = self.offset();
        let avail = self.fill(storage, RECORD_HEADER_BYTES)?;
        if avail == 0 {
            return Ok(Step::End);
        }
        if avail < RECORD_HEADER_BYTES {
            return Ok(Step::Invalid {
                offset,
                reason: format!("partial record header ({avail} of {RECORD_HEADER_BYTES} bytes)"),
            });
        }
        let header = decode_record_header(&self.buf[self.pos..]);
        if header.payload_bytes > record_size_bytes_max {
            return Ok(Step::Invalid {
                offset,
                reason: format!(
                    "record length {} exceeds record_size_bytes_max {record_size_bytes_max}",
                    header.payload_bytes
                ),
            });
        }
        let frame_bytes = RECORD_HEADER_BYTES + header.payload_bytes as usize;
        let avail = self.fill(storage, frame_bytes)?;
        if avail < frame_bytes {
            return Ok(Step::Invalid {
                offset,
                reason: format!("partial record ({avail} of {frame_bytes} bytes)"),
            });
        }
        let payload = &self.buf[self.pos + RECORD_HEADER_BYTES..self.pos + frame_bytes];
        if record_crc(header.lsn, payload) != header.crc {
            return Ok(Step::Invalid {
                offset,
                reason: format!("record checksum mismatch (stored LSN {})", header.lsn),
            });
        }
        let start = self.pos;
        self.pos += frame_bytes;
        Ok(Step::Record {
            lsn: header.lsn,
            offset,
            payload: &self.buf[start + RECORD_HEADER_BYTES..start + frame_bytes],
        })
    }
}

pub(crate) fn io_err(storage: &dyn Storage, op: &'static str, name: &str) -> impl Fn(std::io::Error) -> WalError {
    let path = storage.path(name);
    move |e| WalError::io(op, path.clone(), &e)
}

/// Creates a segment that starts at `first_lsn`: header written and synced, directory synced.
pub(crate) fn create_segment(storage: &dyn Storage, first_lsn: Lsn) -> Result<SegmentInfo, WalError> {
    let name = segment_name(first_lsn);
    storage.create(&name).map_err(io_err(storage, "create", &name))?;
    storage
        .append(&name, &encode_segment_header(first_lsn))
        .map_err(io_err(storage, "append", &name))?;
    storage.sync_data(&name).map_err(io_err(storage, "sync_data", &name))?;
    storage.sync_dir().map_err(io_err(storage, "sync_dir", "."))?;
    Ok(SegmentInfo { first_lsn, name })
}
