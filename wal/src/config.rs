//! Configuration of the log: durability policy and the size limits.

use crate::WalError;
use crate::format::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};

/// Default of `WalConfig::queue_bytes_max`: most bytes (record frames) that may wait in the
/// queue for the writer before appends are refused with [`WalError::QueueFull`].
pub const QUEUE_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// When the writer thread calls `fdatasync` and when appends are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// fsync every group commit; acknowledge only after the fsync returned. The default.
    #[default]
    Always,
    /// Acknowledge after the write; fsync at least every `interval_ms` milliseconds while
    /// unsynced data exists. A crash may lose up to that much acknowledged data.
    Interval {
        /// Longest time, in milliseconds, that written data stays unsynced.
        interval_ms: u64,
    },
    /// Never fsync (except on segment roll and close). For tests and benchmarks only:
    /// "durable" then means "handed to the operating system".
    None,
}

/// Limits and policy of a log. Build it with `WalConfig { .., ..WalConfig::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Durability policy, see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// A segment is rolled when the next record would take it past this size. A single record
    /// larger than this still goes in (alone). Default 64 MiB.
    pub segment_size_bytes_max: u64,
    /// Largest payload accepted by `append`. Default 16 MiB.
    pub record_size_bytes_max: u32,
    /// Number of snapshots kept on disk; segments are deleted only once the oldest kept
    /// snapshot covers them, so older snapshots remain usable as fallbacks. Default 2.
    pub snapshots_kept: usize,
    /// Bound on the bytes of one group-commit write (a single larger append is written alone).
    /// Default 8 MiB.
    pub batch_bytes_max: usize,
    /// Bound on the record bytes (frames) waiting for the writer; beyond it appends are
    /// refused with `WalError::QueueFull` instead of growing memory without bound (a single
    /// append is always accepted into an empty queue). Default [`QUEUE_BYTES_MAX`], 1 GiB.
    pub queue_bytes_max: u64,
    /// Whether `open` may start a new, empty log in a directory that holds no segment. A
    /// caller that knows the log existed (the engine, once its data directory has been used)
    /// turns it off, so a log lost to a power cut or a mistake is [`WalError::LogMissing`]
    /// instead of a silent fresh start. Default `true`.
    pub create_if_missing: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            sync: SyncPolicy::Always,
            segment_size_bytes_max: 64 * 1024 * 1024,
            record_size_bytes_max: 16 * 1024 * 1024,
            snapshots_kept: 2,
            batch_bytes_max: 8 * 1024 * 1024,
            queue_bytes_max: QUEUE_BYTES_MAX,
            create_if_missing: true,
        }
    }
}

impl WalConfig {
    /// Rejects configurations the log cannot work with.
    pub(crate) fn validate(&self) -> Result<(), WalError> {
        let segment_bytes_min = (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES) as u64;
        if self.segment_size_bytes_max < segment_bytes_min {
            return Err(WalError::InvalidConfig(format!(
                "segment_size_bytes_max {} is below the minimum of {segment_bytes_min} bytes",
                self.segment_size_bytes_max
            )));
        }
        if self.snapshots_kept == 0 {
            return Err(WalError::InvalidConfig("snapshots_kept must be at least 1".into()));
        }
        if self.batch_bytes_max == 0 {
            return Err(WalError::InvalidConfig("batch_bytes_max must be at least 1".into()));
        }
        if let SyncPolicy::Interval { interval_ms: 0 } = self.sync {
            return Err(WalError::InvalidConfig("sync interval_ms must be at least 1".into()));
        }
        Ok(())
    }
}
