//! [`EngineError`]: why an engine call did not succeed, one variant per kind of answer a caller
//! acts on (refused, busy, unavailable, outcome unknown, locked, cannot open), each carrying
//! its cause as a type: the log's own error (`wal::WalError`), the codec's, the actor that
//! ended, the gateway call whose answer was lost. No variant is only a message, so nothing
//! decides by reading error text.
//!
//! Every type here is `Clone`: one failure (a failed fsync, say) answers every caller it
//! affects. I/O errors, which are not, are shared behind an `Arc`.

use crate::codec::CodecError;
use crate::domain::{InvariantViolation, OrderId, Rejection, Sku, WarehouseId};
use crate::engine::gateway::GatewayError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use wal::WalError;

/// Why an engine call did not succeed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum EngineError {
    /// The request was refused on business grounds; nothing changed.
    #[error("{0}")]
    Rejected(Rejection),
    /// A mailbox stayed full for `mailbox_wait_ms`, or a bounded resource is taken; try again.
    #[error("busy: {0}")]
    Busy(#[from] Busy),
    /// The log cannot be written (poisoned, closed), an actor is gone, or a dependency failed;
    /// nothing was acknowledged.
    #[error("unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    /// A payment or refund reached the gateway and its outcome is not known (no answer, a
    /// timeout, an error): it stays `pending` until the gateway says what it recorded. A retry
    /// or the background settler settles it; nothing is charged or refunded twice.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(#[from] OutcomeUnknown),
    /// The data directory is locked by another running process.
    #[error("data directory {dir} is in use by another oms process (lock file {dir}/LOCK)", dir = .0.display())]
    Locked(PathBuf),
    /// Opening or recovering the data directory failed (I/O, corruption, lost data).
    #[error("cannot open data directory: {0}")]
    Open(#[from] OpenError),
}

impl From<Rejection> for EngineError {
    fn from(r: Rejection) -> Self {
        EngineError::Rejected(r)
    }
}

/// A running engine's log failed: nothing is acknowledged.
impl From<WalError> for EngineError {
    fn from(e: WalError) -> Self {
        EngineError::Unavailable(Unavailable::Log(e))
    }
}

/// An actor, as errors name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Pair { sku: Sku, warehouse_id: WarehouseId },
    Order(OrderId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Pair { sku, warehouse_id } => write!(f, "inventory {sku}@{warehouse_id}"),
            Actor::Order(id) => write!(f, "order {id}"),
        }
    }
}

/// What stayed busy.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Busy {
    /// The actor's mailbox stayed full for `mailbox_wait_ms`.
    #[error("{0} is busy")]
    Mailbox(Actor),
    /// `stream_replays_max` event streams are reading the log already.
    #[error("{max} event streams are replaying the log already")]
    StreamReplays { max: usize },
}

/// Why a running engine cannot answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Unavailable {
    /// The log failed (an append, a sync, a read, closing it): after a failed write it is
    /// poisoned and acknowledges nothing until a restart.
    #[error("the log cannot be written: {0}")]
    Log(#[from] WalError),
    /// Reading the log back failed (an event stream's history).
    #[error("the log cannot be read: {0}")]
    LogRead(WalError),
    /// Writing a snapshot failed (the log itself may be fine).
    #[error("snapshot: {0}")]
    Snapshot(WalError),
    /// A record read back from the log does not decode.
    #[error("record {lsn}: {source}")]
    Record { lsn: u64, source: CodecError },
    /// `shutdown` was called.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// Actors crashed; the engine acknowledges nothing until it is restarted (crash-only).
    #[error("{0} actor(s) crashed; the engine accepts nothing until it is restarted")]
    ActorsCrashed(u64),
    /// This actor crashed: its cell is dead.
    #[error("{0} is unavailable: its actor crashed; the engine must be restarted")]
    ActorDead(Actor),
    /// The actor ended (crashed) with the request in its mailbox: its reply was dropped.
    #[error("{0} ended without answering")]
    NoAnswer(Actor),
    /// A task the engine ran the work in ended without an answer.
    #[error("the {task} task {}", if *.panicked { "panicked" } else { "was cancelled" })]
    TaskFailed { task: &'static str, panicked: bool },
    /// The gateway failed without charging (a capture it refused): the order can be paid again.
    #[error("payment gateway: {reason}; nothing was charged and the order can be paid again")]
    PaymentFailed { reason: String },
    /// Cluster mode: the record did not reach the cluster's replicated log (this node was
    /// deposed or cannot reach it); it is not acknowledged, and this node acknowledges nothing
    /// more until it restarts as a standby.
    #[error("not the primary: {0}")]
    NotLeader(String),
}

impl Unavailable {
    /// A task that ended without an answer.
    pub(crate) fn task(task: &'static str, e: &tokio::task::JoinError) -> Unavailable {
        Unavailable::TaskFailed {
            task,
            panicked: e.is_panic(),
        }
    }
}

/// A gateway call whose outcome is not known.
#[derive(Clone, Debug, thiserror::Error)]
#[error("payment gateway ({call}): {cause}; it stays pending and is settled by a retry or in the background")]
pub struct OutcomeUnknown {
    pub call: GatewayCall,
    pub cause: UnknownCause,
}

/// The gateway calls of the payment-outcome protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayCall {
    Authorization,
    Capture,
    Lookup,
    Refund,
    RefundLookup,
}

impl fmt::Display for GatewayCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GatewayCall::Authorization => "authorization",
            GatewayCall::Capture => "capture",
            GatewayCall::Lookup => "lookup",
            GatewayCall::Refund => "refund",
            GatewayCall::RefundLookup => "refund lookup",
        })
    }
}

/// Why a gateway call's outcome is not known.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UnknownCause {
    /// The gateway failed, timed out or did not answer.
    #[error("{0}")]
    Gateway(GatewayError),
    /// A lookup of a charge key found a refund: the gateway's books disagree with ours.
    #[error("a refund is recorded under a charge key")]
    RefundUnderChargeKey,
    /// A lookup of a refund key found a charge.
    #[error("a charge is recorded under a refund key")]
    ChargeUnderRefundKey,
}

/// Why the data directory could not be opened or recovered.
#[derive(Clone, Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create {}: {source}", .path.display())]
    CreateDir { path: PathBuf, source: Arc<std::io::Error> },
    #[error("cannot write to {}: {source}", .path.display())]
    LockFile { path: PathBuf, source: Arc<std::io::Error> },
    #[error("cannot lock {}/LOCK: {source}", .dir.display())]
    Lock { dir: PathBuf, source: Arc<std::io::Error> },
    /// The log refused to open or to be read (corruption, lost records, I/O).
    #[error("{0}")]
    Log(#[from] WalError),
    /// The directory was used before (`marker` exists) and its log is gone.
    #[error("{source}: {} says this data directory was used before; restore its log, or move the directory away to start empty", .marker.display())]
    LogLost { marker: PathBuf, source: WalError },
    #[error("cannot write {}: {source}", .path.display())]
    Marker { path: PathBuf, source: Arc<std::io::Error> },
    #[error("snapshot at {next_lsn}: {source}")]
    Snapshot { next_lsn: u64, source: CodecError },
    #[error("record {lsn}: {source}")]
    Record { lsn: u64, source: CodecError },
    #[error("cannot start the replay reader: {0}")]
    ReplayThread(Arc<std::io::Error>),
    /// The replayed state and the log disagree on where the log continues.
    #[error(
        "the recovered state ends at LSN {state_end} but the log continues at LSN {log_next}; refusing to reuse log positions"
    )]
    PositionMismatch { state_end: u64, log_next: u64 },
    #[error("recovered state breaks an invariant: {0}")]
    Invariant(#[from] InvariantViolation),
    /// A log subscriber's stored position could not be read.
    #[error("{0}")]
    Subscribers(#[from] crate::engine::subscriber::registry::SubscriberError),
    /// A recovery task ended without an answer.
    #[error("the {task} task {}", if *.panicked { "panicked" } else { "was cancelled" })]
    TaskFailed { task: &'static str, panicked: bool },
}

impl OpenError {
    /// A recovery task that ended without an answer.
    pub(crate) fn task(task: &'static str, e: &tokio::task::JoinError) -> OpenError {
        OpenError::TaskFailed {
            task,
            panicked: e.is_panic(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's error stays the cause, as a value: a poisoned log is `Unavailable::Log`.
    #[test]
    fn the_logs_error_is_carried_not_rendered() {
        let e: EngineError = WalError::Poisoned("fsync failed".into()).into();
        assert!(
            matches!(&e, EngineError::Unavailable(Unavailable::Log(WalError::Poisoned(why))) if why == "fsync failed")
        );
        assert_eq!(
            e.to_string(),
            "unavailable: the log cannot be written: wal poisoned: fsync failed"
        );
        let open: EngineError = OpenError::from(WalError::Closed).into();
        assert!(matches!(open, EngineError::Open(OpenError::Log(WalError::Closed))));
    }

    /// Messages people and the server's exit path read keep their wording.
    #[test]
    fn messages_name_the_cause() {
        let locked = EngineError::Locked(PathBuf::from("/data"));
        assert_eq!(
            locked.to_string(),
            "data directory /data is in use by another oms process (lock file /data/LOCK)"
        );
        let unknown = OutcomeUnknown {
            call: GatewayCall::RefundLookup,
            cause: UnknownCause::Gateway(GatewayError::Unavailable("timed out".into())),
        };
        assert_eq!(
            unknown.to_string(),
            "payment gateway (refund lookup): gateway unavailable: timed out; it stays pending and is settled by a retry or in the background"
        );
        let busy = Busy::Mailbox(Actor::Order(OrderId(7)));
        assert_eq!(busy.to_string(), "order ORD-0000000007 is busy");
        let failed = Unavailable::TaskFailed {
            task: "placement",
            panicked: true,
        };
        assert_eq!(failed.to_string(), "the placement task panicked");
    }
}
