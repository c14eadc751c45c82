//! Reading segment files: a buffered cursor over one segment's records, and the open-time
//! recovery scan that finds the logical end of the log.
//!
//! Recovery rule (one rule per kind of damage, never skip):
//! - a damaged record at the very end of the last segment with nothing valid after it is a
//!   torn tail: it is truncated and reported with `tracing::warn!`;
//! - any other damage (a bad record followed by a valid one, damage in an earlier segment,
//!   an LSN gap between segments, a bad header) is `WalError::Corrupt` with segment and offset.

use crate::format::{
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, decode_record_header, decode_segment_header, encode_segment_header,
    parse_segment_name, parse_snapshot_name, record_crc, segment_name, snapshot_name,
};
use crate::storage::Storage;
use crate::{Lsn, WalConfig, WalError};

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

/// The log's state after the open-time scan.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// All segments, oldest first; the last is the one appends go to.
    pub(crate) segments: Vec<SegmentInfo>,
    /// Length in bytes of the last segment after any truncation.
    pub(crate) active_len: u64,
    /// LSN of the next record to append.
    pub(crate) next_lsn: Lsn,
    /// Bytes cut from a torn tail.
    pub(crate) truncated_bytes: u64,
    /// Human description of what was cut; empty if nothing.
    pub(crate) truncated_hint: String,
}

fn io_err(storage: &dyn Storage, op: &'static str, name: &str) -> impl Fn(std::io::Error) -> WalError {
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

/// Looks for any valid record (checksum and plausible LSN) starting after `bad_offset`.
/// Used to tell a torn tail (nothing valid after) from mid-log corruption.
fn valid_record_after(
    storage: &dyn Storage,
    name: &str,
    bad_offset: u64,
    expected_lsn: Lsn,
    record_size_bytes_max: u32,
) -> Result<Option<(u64, Lsn)>, WalError> {
    let file = crate::storage::read_all(storage, name).map_err(io_err(storage, "read", name))?;
    let start = usize::try_from(bad_offset).expect("offset within a file in memory");
    let tail = &file[start.min(file.len())..];
    // A record after the damage has an LSN at least `expected_lsn` and at most one per
    // `RECORD_HEADER_BYTES` of tail; checking this first keeps random bytes from costing a CRC.
    let lsn_max = expected_lsn.saturating_add((tail.len() / RECORD_HEADER_BYTES) as u64);
    for at in 1..tail.len().saturating_sub(RECORD_HEADER_BYTES - 1) {
        let header = decode_record_header(&tail[at..]);
        if header.lsn < expected_lsn || header.lsn > lsn_max {
            continue;
        }
        if header.payload_bytes > record_size_bytes_max {
            continue;
        }
        let end = at + RECORD_HEADER_BYTES + header.payload_bytes as usize;
        if end > tail.len() {
            continue;
        }
        if record_crc(header.lsn, &tail[at + RECORD_HEADER_BYTES..end]) == header.crc {
            return Ok(Some((bad_offset + at as u64, header.lsn)));
        }
    }
    Ok(None)
}

/// Whether a file consists only of zero bytes (or is empty).
fn is_all_zero(storage: &dyn Storage, name: &str) -> Result<bool, WalError> {
    let bytes = crate::storage::read_all(storage, name).map_err(io_err(storage, "read", name))?;
    Ok(bytes.iter().all(|&b| b == 0))
}

/// Largest first LSN a segment may declare: 2^63 - 1. No real log comes near it, and the bound
/// keeps every LSN computation of a damaged or crafted file far from overflow.
pub(crate) const LSN_MAX: Lsn = i64::MAX as Lsn;

/// Scans every segment, truncates a torn tail, and returns where appends continue.
/// Creates the first segment of an empty directory, unless the directory shows earlier use.
/// Refuses a log that ends before the newest snapshot.
pub(crate) fn recover(storage: &dyn Storage, config: &WalConfig) -> Result<Recovered, WalError> {
    let record_size_bytes_max = config.record_size_bytes_max;
    let names = storage.list().map_err(io_err(storage, "list", "."))?;
    let mut segments: Vec<SegmentInfo> = names
        .iter()
        .filter_map(|name| {
            parse_segment_name(name).map(|first_lsn| SegmentInfo {
                first_lsn,
                name: name.clone(),
            })
        })
        .collect();
    segments.sort_by_key(|s| s.first_lsn);
    // A snapshot named N was written after records up to N - 1 were fsynced: the log held them.
    let newest_snapshot = names.iter().filter_map(|n| parse_snapshot_name(n)).max();

    if segments.is_empty() {
        let evidence = match newest_snapshot {
            Some(next_lsn) => Some(format!(
                "it holds snapshot {} (covering records up to LSN {})",
                snapshot_name(next_lsn),
                next_lsn.saturating_sub(1)
            )),
            None if !config.create_if_missing => Some("its owner says the log existed".to_string()),
            None => None,
        };
        if let Some(evidence) = evidence {
            return Err(WalError::LogMissing {
                dir: storage.path("."),
                evidence,
            });
        }
        let segment = create_segment(storage, 1)?;
        return Ok(Recovered {
            segments: vec![segment],
            active_len: SEGMENT_HEADER_BYTES as u64,
            next_lsn: 1,
            truncated_bytes: 0,
            truncated_hint: String::new(),
        });
    }
    if let Some(bad) = segments.iter().find(|s| s.first_lsn == 0 || s.first_lsn > LSN_MAX) {
        return Err(WalError::Corrupt {
            segment: storage.path(&bad.name),
            offset: 0,
            reason: format!("first LSN {} in the file name is outside 1..={LSN_MAX}", bad.first_lsn),
        });
    }

    let mut expected_lsn = segments[0].first_lsn;
    let mut active_len = 0;
    let mut truncated_bytes = 0;
    let mut truncated_hint = String::new();
    let n_segments = segments.len();
    for (segment_idx, segment) in segments.iter().enumerate() {
        let is_last = segment_idx + 1 == n_segments;
        let path = storage.path(&segment.name);
        let corrupt = |offset: u64, reason: String| WalError::Corrupt {
            segment: path.clone(),
            offset,
            reason,
        };
        if segment.first_lsn != expected_lsn {
            return Err(corrupt(
                0,
                format!(
                    "LSN gap: segment starts at LSN {}, expected {expected_lsn}",
                    segment.first_lsn
                ),
            ));
        }
        let mut cursor = SegmentCursor::open(storage, &segment.name)?;
        let header = match cursor.read_header(storage) {
            // A last segment that holds only zeros was created but its header never reached
            // the disk (the file system extended it without the data): torn like a short one.
            Err(WalError::Corrupt { .. }) if is_last && is_all_zero(storage, &segment.name)? => None,
            other => other?,
        };
        match header {
            Some(first_lsn) if first_lsn == segment.first_lsn => {}
            Some(first_lsn) => {
                return Err(corrupt(
                    0,
                    format!("header first LSN {first_lsn} does not match the file name"),
                ));
            }
            None if is_last => {
                // Crash while creating the segment: rewrite its header.
                let len = storage
                    .file_len(&segment.name)
                    .map_err(io_err(storage, "file_len", &segment.name))?;
                tracing::warn!(segment = %segment.name, truncated_bytes = len, "wal: rewriting torn segment header");
                storage
                    .truncate(&segment.name, 0)
                    .map_err(io_err(storage, "truncate", &segment.name))?;
                storage
                    .append(&segment.name, &encode_segment_header(segment.first_lsn))
                    .map_err(io_err(storage, "append", &segment.name))?;
                truncated_bytes += len;
                truncated_hint = format!("{}: torn segment header of {len} bytes rewritten", segment.name);
                active_len = SEGMENT_HEADER_BYTES as u64;
                continue;
            }
            None => return Err(corrupt(0, "segment shorter than its header".into())),
        }
        let end_offset = loop {
            let (offset, reason) = match cursor.next_record(storage, record_size_bytes_max)? {
                Step::Record { lsn, .. } if lsn == expected_lsn => {
                    expected_lsn += 1;
                    continue;
                }
                Step::Record { lsn, offset, .. } => (offset, format!("record has LSN {lsn}, expected {expected_lsn}")),
                Step::End => break cursor.offset(),
                Step::Invalid { offset, reason } => (offset, reason),
            };
            if !is_last {
                return Err(corrupt(offset, format!("{reason} (in a segment that is not the last)")));
            }
            if let Some((valid_offset, valid_lsn)) =
                valid_record_after(storage, &segment.name, offset, expected_lsn, record_size_bytes_max)?
            {
                return Err(corrupt(
                    offset,
                    format!("{reason}; a valid record (LSN {valid_lsn}) follows at byte {valid_offset}"),
                ));
            }
            let len = storage
                .file_len(&segment.name)
                .map_err(io_err(storage, "file_len", &segment.name))?;
            let cut = len - offset;
            tracing::warn!(
                segment = %segment.name,
                offset,
                truncated_bytes = cut,
                reason = %reason,
                "wal: truncating torn tail"
            );
            storage
                .truncate(&segment.name, offset)
                .map_err(io_err(storage, "truncate", &segment.name))?;
            truncated_bytes += cut;
            truncated_hint = format!(
                "{}: cut {cut} bytes at offset {offset} after LSN {} ({reason})",
                segment.name,
                expected_lsn - 1
            );
            break offset;
        };
        assert!(
            end_offset >= SEGMENT_HEADER_BYTES as u64,
            "records start after the header"
        );
        if is_last {
            active_len = end_offset;
        }
    }
    if let Some(next_lsn) = newest_snapshot
        && next_lsn > expected_lsn
    {
        return Err(WalError::LogBehindSnapshot {
            snapshot: storage.path(&snapshot_name(next_lsn)),
            snapshot_end_lsn: next_lsn - 1,
            log_end_lsn: expected_lsn - 1,
        });
    }
    // Everything recovered is made durable now, so it can be treated as durable from here on.
    let active = &segments[n_segments - 1].name;
    storage
        .sync_data(active)
        .map_err(io_err(storage, "sync_data", active))?;
    storage.sync_dir().map_err(io_err(storage, "sync_dir", "."))?;
    Ok(Recovered {
        segments,
        active_len,
        next_lsn: expected_lsn,
        truncated_bytes,
        truncated_hint,
    })
}
