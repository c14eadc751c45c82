//! [`WalReader`]: iterates durable records from a given LSN across segments.
//!
//! The reader fixes its end (the durable LSN) and the segment list when created, so it never
//! sees a record that is not yet durable and is unaffected by later appends. A segment deleted
//! by a snapshot while the reader still needs it ends the iteration with an I/O error.

use std::sync::Arc;

use crate::segment::{SegmentCursor, SegmentInfo, Step};
use crate::storage::Storage;
use crate::{Lsn, WalError};

/// Iterator over `(lsn, payload)` of durable records, in LSN order.
#[derive(Debug)]
pub struct WalReader {
    storage: Arc<dyn Storage>,
    segments: Vec<SegmentInfo>,
    /// Index in `segments` of the segment being read.
    segment_idx: usize,
    cursor: Option<SegmentCursor>,
    /// LSN of the next record to return.
    next_lsn: Lsn,
    /// Last LSN to return (durable end at creation).
    end_lsn: Lsn,
    record_size_bytes_max: u32,
    /// Set after an error: the iterator is fused.
    failed: bool,
}

impl WalReader {
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        segments: Vec<SegmentInfo>,
        from: Lsn,
        end_lsn: Lsn,
        record_size_bytes_max: u32,
    ) -> WalReader {
        assert!(!segments.is_empty(), "a log always has a segment");
        assert!(from >= segments[0].first_lsn, "caller checked availability");
        // The segment holding `from` is the last one starting at or before it.
        let segment_idx = segments.partition_point(|s| s.first_lsn <= from) - 1;
        WalReader {
            storage,
            segments,
            segment_idx,
            cursor: None,
            next_lsn: from,
            end_lsn,
            record_size_bytes_max,
            failed: false,
        }
    }

    fn corrupt(&self, offset: u64, reason: String) -> WalError {
        let name = &self.segments[self.segment_idx].name;
        WalError::Corrupt {
            segment: self.storage.path(name),
            offset,
            reason,
        }
    }

    fn next_record(&mut self) -> Result<Option<(Lsn, Vec<u8>)>, WalError> {
        loop {
            if self.next_lsn > self.end_lsn {
                return Ok(None);
            }
            if self.cursor.is_none() {
                let segment = &self.segments[self.segment_idx];
                let mut cursor = SegmentCursor::open(self.storage.as_ref(), &segment.name)?;
                match cursor.read_header(self.storage.as_ref())? {
                    Some(first_lsn) if first_lsn == segment.first_lsn => {}
                    _ => return Err(self.corrupt(0, "bad or missing segment header".into())),
                }
                self.cursor = Some(cursor);
            }
            let storage = Arc::clone(&self.storage);
            let cursor = self.cursor.as_mut().expect("set above");
            match cursor.next_record(storage.as_ref(), self.record_size_bytes_max)? {
                Step::Record { lsn, payload, offset } => {
                    if lsn < self.next_lsn {
                        // Seeking within the segment to `from`.
                        continue;
                    }
                    if lsn != self.next_lsn {
                        let reason = format!("record has LSN {lsn}, expected {}", self.next_lsn);
                        return Err(self.corrupt(offset, reason));
                    }
                    let payload = payload.to_vec();
                    self.next_lsn += 1;
                    return Ok(Some((lsn, payload)));
                }
                Step::End => {
                    let name = cursor.name().to_string();
                    if self.segment_idx + 1 >= self.segments.len() {
                        let reason = format!(
                            "segment {name} ends before the durable LSN {} (next LSN {})",
                            self.end_lsn, self.next_lsn
                        );
                        let offset = cursor.offset();
                        return Err(self.corrupt(offset, reason));
                    }
                    self.segment_idx += 1;
                    self.cursor = None;
                }
                Step::Invalid { offset, reason } => return Err(self.corrupt(offset, reason)),
            }
        }
    }
}

impl Iterator for WalReader {
    type Item = Result<(Lsn, Vec<u8>), WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}
