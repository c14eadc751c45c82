//! What the projector reports: its position, whether it is connected, what it wrote and how
//! often it failed. Shared with the HTTP layer (`/metrics`, `/readyz`) as plain numbers.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Updated by the projector task, read when scraped.
#[derive(Debug, Default)]
pub struct ReadModelStatus {
    position: AtomicU64,
    connected: AtomicBool,
    records_total: AtomicU64,
    batches_total: AtomicU64,
    errors_total: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of the status, with the lag measured against the log's newest published record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadModelFigures {
    /// The last LSN whose rows are committed in PostgreSQL.
    pub position: u64,
    /// Records published by the engine and not yet in PostgreSQL.
    pub lag_records: u64,
    pub connected: bool,
    pub records_total: u64,
    pub batches_total: u64,
    pub errors_total: u64,
    pub last_error: Option<String>,
}

impl ReadModelStatus {
    pub(crate) fn committed(&self, position: u64, records: u64) {
        self.position.store(position, Ordering::Release);
        self.records_total.fetch_add(records, Ordering::Relaxed);
        self.batches_total.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = None;
    }

    pub(crate) fn set_position(&self, position: u64) {
        self.position.store(position, Ordering::Release);
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    pub(crate) fn failed(&self, error: String) {
        self.errors_total.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Release);
        *self.last_error.lock() = Some(error);
    }

    /// The last LSN committed to PostgreSQL.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// The figures, with the lag behind `published_lsn` (the engine's newest record).
    pub fn figures(&self, published_lsn: u64) -> ReadModelFigures {
        let position = self.position();
        ReadModelFigures {
            position,
            lag_records: published_lsn.saturating_sub(position),
            connected: self.connected.load(Ordering::Acquire),
            records_total: self.records_total.load(Ordering::Relaxed),
            batches_total: self.batches_total.load(Ordering::Relaxed),
            errors_total: self.errors_total.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }
}
