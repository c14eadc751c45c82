//! The open-time recovery scan: finds the logical end of the log, repairs a torn tail of the
//! last segment, and refuses a log that lost records.
//!
//! Recovery rule (one rule per kind of damage, never skip):
//! - a damaged record at the very end of the last segment with nothing valid after it is a
//!   torn tail: it is truncated and reported with `tracing::warn!`;
//! - any other damage (a bad record followed by a valid one, damage in an earlier segment,
//!   an LSN gap between segments, a bad header, an LSN outside `1..=LSN_MAX`) is
//!   `WalError::Corrupt` with segment and offset;
//! - a log that ends before its newest snapshot, or a used directory without segments, is
//!   refused (`LogBehindSnapshot`, `LogMissing`): starting there would reuse the positions of
//!   lost records or silently start over.
//!
//! Repairs are decided while scanning but carried out only once every check has passed, so a
//! refused open leaves the log as it found it.

use crate::format::{
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, decode_record_header, encode_segment_header, parse_segment_name,
    parse_snapshot_name, record_crc, snapshot_name,
};
use crate::segment::{SegmentCursor, SegmentInfo, Step, create_segment, io_err};
use crate::storage::Storage;
use crate::{Lsn, WalConfig, WalError};

/// Largest first LSN a segment may declare: 2^63 - 1. No real log comes near it, and the bound
/// keeps every LSN computation on a damaged or crafted file far from overflow.
pub(crate) const LSN_MAX: Lsn = i64::MAX as Lsn;

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

/// A repair of the last segment, decided by the scan and carried out after the checks.
#[derive(Debug)]
enum Repair {
    /// The segment was torn while being created (shorter than its header, or only zeros):
    /// its `len` bytes are replaced by a fresh header.
    RewriteHeader { len: u64 },
    /// A torn tail: the segment is cut at `offset`, dropping `cut` bytes.
    Truncate { offset: u64, cut: u64, reason: String },
}

/// What scanning one segment found.
struct Scanned {
    /// Where the valid records end (after the repair, if any).
    end_offset: u64,
    repair: Option<Repair>,
}

/// Scans every segment and returns where appends continue, after repairing a torn tail.
/// Creates the first segment of an empty directory, unless the directory shows earlier use.
pub(crate) fn recover(storage: &dyn Storage, config: &WalConfig) -> Result<Recovered, WalError> {
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
        return start_empty(storage, config, newest_snapshot);
    }
    if let Some(bad) = segments.iter().find(|s| s.first_lsn == 0 || s.first_lsn > LSN_MAX) {
        return Err(WalError::Corrupt {
            segment: storage.path(&bad.name),
            offset: 0,
            reason: format!("first LSN {} in the file name is outside 1..={LSN_MAX}", bad.first_lsn),
        });
    }

    let mut expected_lsn = segments[0].first_lsn;
    let mut last = None;
    for (idx, segment) in segments.iter().enumerate() {
        let is_last = idx + 1 == segments.len();
        let scanned = scan_segment(
            storage,
            segment,
            is_last,
            &mut expected_lsn,
            config.record_size_bytes_max,
        )?;
        assert!(
            scanned.end_offset >= SEGMENT_HEADER_BYTES as u64,
            "records start after the header"
        );
        if is_last {
            last = Some(scanned);
        }
    }
    let last = last.expect("there is a segment");
    if let Some(next_lsn) = newest_snapshot
        && next_lsn > expected_lsn
    {
        return Err(WalError::LogBehindSnapshot {
            snapshot: storage.path(&snapshot_name(next_lsn)),
            snapshot_end_lsn: next_lsn - 1,
            log_end_lsn: expected_lsn - 1,
        });
    }
    let active = &segments[segments.len() - 1];
    let (truncated_bytes, truncated_hint) = match last.repair {
        Some(repair) => carry_out(storage, active, repair, expected_lsn)?,
        None => (0, String::new()),
    };
    // Everything recovered is made durable now, so it can be treated as durable from here on.
    storage
        .sync_data(&active.name)
        .map_err(io_err(storage, "sync_data", &active.name))?;
    storage.sync_dir().map_err(io_err(storage, "sync_dir", "."))?;
    Ok(Recovered {
        segments,
        active_len: last.end_offset,
        next_lsn: expected_lsn,
        truncated_bytes,
        truncated_hint,
    })
}

/// A directory without segments: a new log starting at LSN 1, unless the directory was used.
fn start_empty(storage: &dyn Storage, config: &WalConfig, newest_snapshot: Option<Lsn>) -> Result<Recovered, WalError> {
    let evidence = match newest_snapshot {
        Some(next_lsn) => Some(format!(
            "it holds snapshot {} (covering records up to LSN {})",
            snapshot_name(next_lsn),
            next_lsn.saturating_sub(1)
        )),
        None if !config.create_if_missing => {
            Some("it was opened as an existing log (create_if_missing off)".to_string())
        }
        None => None,
    };
    if let Some(evidence) = evidence {
        return Err(WalError::LogMissing {
            dir: storage.path("."),
            evidence,
        });
    }
    let segment = create_segment(storage, 1)?;
    Ok(Recovered {
        segments: vec![segment],
        active_len: SEGMENT_HEADER_BYTES as u64,
        next_lsn: 1,
        truncated_bytes: 0,
        truncated_hint: String::new(),
    })
}

/// Scans one segment from its header, advancing `expected_lsn` past its valid records.
fn scan_segment(
    storage: &dyn Storage,
    segment: &SegmentInfo,
    is_last: bool,
    expected_lsn: &mut Lsn,
    record_size_bytes_max: u32,
) -> Result<Scanned, WalError> {
    let corrupt = |offset: u64, reason: String| WalError::Corrupt {
        segment: storage.path(&segment.name),
        offset,
        reason,
    };
    if segment.first_lsn != *expected_lsn {
        return Err(corrupt(
            0,
            format!(
                "LSN gap: segment starts at LSN {}, expected {expected_lsn}",
                segment.first_lsn
            ),
        ));
    }
    let mut cursor = SegmentCursor::open(storage, &segment.name)?;
    if let Some(torn) = scan_header(storage, segment, is_last, &mut cursor)? {
        return Ok(torn);
    }
    loop {
        let (offset, reason) = match cursor.next_record(storage, record_size_bytes_max)? {
            Step::Record { lsn, .. } if lsn == *expected_lsn => {
                *expected_lsn += 1;
                continue;
            }
            Step::Record { lsn, offset, .. } => (offset, format!("record has LSN {lsn}, expected {expected_lsn}")),
            Step::End => {
                return Ok(Scanned {
                    end_offset: cursor.offset(),
                    repair: None,
                });
            }
            Step::Invalid { offset, reason } => (offset, reason),
        };
        if !is_last {
            return Err(corrupt(offset, format!("{reason} (in a segment that is not the last)")));
        }
        if let Some((valid_offset, valid_lsn)) =
            valid_record_after(storage, &segment.name, offset, *expected_lsn, record_size_bytes_max)?
        {
            return Err(corrupt(
                offset,
                format!("{reason}; a valid record (LSN {valid_lsn}) follows at byte {valid_offset}"),
            ));
        }
        let len = storage
            .file_len(&segment.name)
            .map_err(io_err(storage, "file_len", &segment.name))?;
        return Ok(Scanned {
            end_offset: offset,
            repair: Some(Repair::Truncate {
                offset,
                cut: len - offset,
                reason,
            }),
        });
    }
}

/// Reads and checks a segment's header. `Some` if the last segment was torn while being
/// created (its header is to be rewritten); `None` if the records follow.
fn scan_header(
    storage: &dyn Storage,
    segment: &SegmentInfo,
    is_last: bool,
    cursor: &mut SegmentCursor,
) -> Result<Option<Scanned>, WalError> {
    let corrupt = |reason: String| WalError::Corrupt {
        segment: storage.path(&segment.name),
        offset: 0,
        reason,
    };
    let header = match cursor.read_header(storage) {
        // A last segment that holds only zeros was created but its header never reached
        // the disk (the file system extended it without the data): torn like a short one.
        Err(WalError::Corrupt { .. }) if is_last && is_all_zero(storage, &segment.name)? => None,
        other => other?,
    };
    match header {
        Some(first_lsn) if first_lsn == segment.first_lsn => Ok(None),
        Some(first_lsn) => Err(corrupt(format!(
            "header first LSN {first_lsn} does not match the file name"
        ))),
        None if is_last => {
            let len = storage
                .file_len(&segment.name)
                .map_err(io_err(storage, "file_len", &segment.name))?;
            Ok(Some(Scanned {
                end_offset: SEGMENT_HEADER_BYTES as u64,
                repair: Some(Repair::RewriteHeader { len }),
            }))
        }
        None => Err(corrupt("segment shorter than its header".into())),
    }
}

/// Carries out the repair of the last segment; returns the bytes cut and a description.
fn carry_out(
    storage: &dyn Storage,
    segment: &SegmentInfo,
    repair: Repair,
    next_lsn: Lsn,
) -> Result<(u64, String), WalError> {
    let name = &segment.name;
    match repair {
        Repair::RewriteHeader { len } => {
            tracing::warn!(segment = %name, truncated_bytes = len, "wal: rewriting torn segment header");
            storage.truncate(name, 0).map_err(io_err(storage, "truncate", name))?;
            storage
                .append(name, &encode_segment_header(segment.first_lsn))
                .map_err(io_err(storage, "append", name))?;
            Ok((len, format!("{name}: torn segment header of {len} bytes rewritten")))
        }
        Repair::Truncate { offset, cut, reason } => {
            tracing::warn!(
                segment = %name,
                offset,
                truncated_bytes = cut,
                reason = %reason,
                "wal: truncating torn tail"
            );
            storage
                .truncate(name, offset)
                .map_err(io_err(storage, "truncate", name))?;
            let hint = format!(
                "{name}: cut {cut} bytes at offset {offset} after LSN {} ({reason})",
                next_lsn - 1
            );
            Ok((cut, hint))
        }
    }
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
