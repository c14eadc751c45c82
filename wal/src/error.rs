//! The one error type of the crate, [`WalError`].
//!
//! It is `Clone` because a single failure (a failed fsync, say) must be handed to every waiter
//! whose append it affects; I/O errors are therefore carried as text, not as `std::io::Error`.

use std::path::PathBuf;

use crate::Lsn;

/// Everything that can go wrong when opening, appending to, reading or snapshotting the log.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WalError {
    /// A storage operation failed (open, append, fsync, rename, ...). `op` names the operation,
    /// `path` the file or directory, `message` the operating system's error text.
    #[error("wal I/O error during {op} on {path}: {message}")]
    Io {
        /// The storage operation that failed, e.g. `"sync_data"`.
        op: &'static str,
        /// The file (or directory) it was applied to.
        path: PathBuf,
        /// The operating system's description of the failure.
        message: String,
    },
    /// The log contains damaged data that is not a torn tail (a bad record followed by valid
    /// data, damage in a segment that is not the last one, an LSN gap, a bad segment header).
    /// Recovery never skips over such damage.
    #[error("wal corrupt: {segment} at byte {offset}: {reason}")]
    Corrupt {
        /// The segment file holding the damage.
        segment: PathBuf,
        /// Byte offset of the damaged record (or header) within that file.
        offset: u64,
        /// What was wrong, in words.
        reason: String,
    },
    /// An earlier write or fsync failed; the log refuses all further appends until reopened,
    /// because it can no longer tell what reached the disk. Carries the original failure.
    #[error("wal poisoned: {0}")]
    Poisoned(String),
    /// The log was closed with [`crate::Wal::close`] (or every handle was dropped).
    #[error("wal closed")]
    Closed,
    /// A record is larger than `WalConfig::record_size_bytes_max`.
    #[error("wal record of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Size of the refused record in bytes.
        size: u64,
        /// The configured maximum in bytes.
        max: u32,
    },
    /// `append_batch` was called with no records; an empty batch has no LSN to acknowledge.
    #[error("wal append_batch called with an empty batch")]
    EmptyBatch,
    /// Too many bytes are queued for the writer (it cannot keep up, or the disk is stuck).
    /// The append is refused at once instead of growing memory without bound; retry later.
    #[error("wal queue full: {queued_bytes} bytes queued, limit {max_bytes} bytes")]
    QueueFull {
        /// Bytes currently queued and not yet written.
        queued_bytes: u64,
        /// The limit, `WalConfig::queue_bytes_max`.
        max_bytes: u64,
    },
    /// `read_from` asked for records that were deleted after a snapshot (or never existed).
    #[error("wal LSN {requested} is no longer available; oldest readable LSN is {first_lsn}")]
    LsnUnavailable {
        /// The LSN asked for.
        requested: Lsn,
        /// The oldest LSN still held in segments.
        first_lsn: Lsn,
    },
    /// `write_snapshot` was given a `next_lsn` of 0 or beyond the records appended so far;
    /// such a snapshot would describe records the log does not hold. (Records appended but
    /// not yet synced are synced first, so they do not cause this.)
    #[error("wal snapshot next_lsn {next_lsn} is beyond the durable log end (durable LSN {durable_lsn})")]
    SnapshotAhead {
        /// The snapshot's claimed next LSN.
        next_lsn: Lsn,
        /// The highest durable LSN at the time of the call.
        durable_lsn: Lsn,
    },
    /// The directory holds no log segment although it was used before: it holds a snapshot,
    /// or the caller said the log exists (`WalConfig::create_if_missing` off). Starting an
    /// empty log there would silently drop everything the lost log held.
    #[error("wal missing: {dir} holds no log segment, but {evidence}; refusing to start an empty log in its place")]
    LogMissing {
        /// The log directory.
        dir: PathBuf,
        /// What shows the directory was used before.
        evidence: String,
    },
    /// The log ends before the newest snapshot: records the snapshot covers were durable once
    /// and are gone (segments deleted or truncated). Appending would give new records the
    /// positions of lost ones, and the next recovery, starting after the snapshot, would skip
    /// them.
    #[error(
        "wal ends before its newest snapshot: the log ends at LSN {log_end_lsn}, but {snapshot} covers records up to LSN {snapshot_end_lsn}; log records are missing, refusing to reuse their positions"
    )]
    LogBehindSnapshot {
        /// The newest snapshot file.
        snapshot: PathBuf,
        /// The last LSN the snapshot covers (its next LSN - 1).
        snapshot_end_lsn: Lsn,
        /// The last LSN in the log (0 if it holds none).
        log_end_lsn: Lsn,
    },
    /// The configuration is unusable (zero sizes, no snapshots kept, ...).
    #[error("wal config invalid: {0}")]
    InvalidConfig(String),
}

impl WalError {
    /// Wraps an `std::io::Error` from the storage layer with the operation and path.
    pub(crate) fn io(op: &'static str, path: PathBuf, err: &std::io::Error) -> WalError {
        WalError::Io {
            op,
            path,
            message: err.to_string(),
        }
    }
}
