//! [`EngineError`]: why an engine call did not succeed.

use crate::domain::Rejection;

/// Why an engine call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum EngineError {
    /// The request was refused on business grounds; nothing changed.
    #[error("{0}")]
    Rejected(Rejection),
    /// An actor's mailbox stayed full for `mailbox_wait_ms`; try again.
    #[error("busy: {0}")]
    Busy(String),
    /// The log cannot be written (poisoned, closed) or a dependency failed; nothing was acknowledged.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A payment or refund reached the gateway and its outcome is not known (no answer, a
    /// timeout, an error): it stays `pending` until the gateway says what it recorded. A retry
    /// or the background settler settles it; nothing is charged or refunded twice.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The data directory is locked by another running process.
    #[error("data directory {0} is in use by another oms process (lock file {0}/LOCK)")]
    Locked(String),
    /// Opening or recovering the data directory failed (I/O, corruption).
    #[error("cannot open data directory: {0}")]
    Open(String),
}

impl From<Rejection> for EngineError {
    fn from(r: Rejection) -> Self {
        EngineError::Rejected(r)
    }
}
