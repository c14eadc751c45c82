//! [`ReplicatedCommit`]: the seam through which cluster mode (`crate::cluster`) makes a
//! record's acknowledgement wait for a replicated log as well as for the local fsync. The
//! engine knows nothing of NATS: single-node mode has no hook (`EngineConfig::replication`
//! is `None`) and pays one branch per append for it.

use std::future::Future;
use std::pin::Pin;

/// What the engine waits on before acknowledging a record in cluster mode.
pub type Replicated = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A replicated log the primary's records must reach before they are acknowledged.
pub trait ReplicatedCommit: Send + Sync {
    /// Hands over the encoded record the local log just gave `lsn` (called before waiting for
    /// the local fsync, with no await between the local append and this call, so every LSN is
    /// handed over exactly once). The future resolves once the record is in the replicated log,
    /// or with the reason it never will be (this node was deposed, the log is unreachable).
    fn submit(&self, lsn: u64, record: Vec<u8>) -> Replicated;
    /// `Some(reason)` once this node must acknowledge nothing more (deposed, lease lost).
    fn refusing(&self) -> Option<String>;
}
