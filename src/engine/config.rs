//! [`EngineConfig`]: everything the engine can be tuned with, each bound named with its unit.

use super::idempotency::IdempotencyLimits;
use super::replication::ReplicatedCommit;
use std::path::PathBuf;
use std::sync::Arc;

/// Default of `EngineConfig::subscriber_retention_bytes_max`: 4 GiB.
pub const SUBSCRIBER_RETENTION_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// Everything the engine can be tuned with. `Default` is the production setting.
#[derive(Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub wal: wal::WalConfig,
    /// Injected storage for crash tests; `None` uses the real file system under `data_dir`.
    pub storage: Option<Arc<dyn wal::Storage>>,
    /// Capacity of every actor mailbox, in messages.
    pub mailbox_capacity: usize,
    /// Most messages an actor takes from its mailbox in one batch.
    pub batch_max: usize,
    /// How long a sender waits for room in a full mailbox before answering `Busy`.
    pub mailbox_wait_ms: u64,
    /// A SKU-warehouse actor with nothing to do for this long stores its state and ends its task.
    pub passivate_after_ms: u64,
    /// The same for order actors: shorter, because an order hears from its client at human
    /// pace (minutes apart) and a million orders should not keep a million tasks alive.
    pub order_passivate_after_ms: u64,
    /// How many times a placement re-allocates after losing a race for stock.
    pub placement_attempts_max: u32,
    /// A snapshot is taken after this many records...
    pub snapshot_every_records: u64,
    /// ...or this long after the last one, if anything was logged since.
    pub snapshot_every_ms: u64,
    /// Carrier of shipments from warehouses that name none.
    pub default_carrier: String,
    /// Longest wait for one payment gateway call.
    pub gateway_timeout_ms: u64,
    /// Records kept for real-time subscribers that are behind; one further behind is cut off.
    pub feed_capacity: usize,
    /// The same bound in bytes (encoded size of the records kept), so a slow subscriber costs
    /// bounded memory however large the records are.
    pub feed_bytes_max: usize,
    /// Most event streams replaying history from the log at once (each reads segments); the
    /// next one is refused as `Busy` until one finishes.
    pub stream_replays_max: usize,
    /// Bounds of the table of stored idempotent responses.
    pub idempotency: IdempotencyLimits,
    /// Most bytes of log segments kept for durable subscribers (relays) that are behind,
    /// beyond what snapshots need; past it the oldest are deleted anyway and the subscriber
    /// is told it fell behind retention.
    pub subscriber_retention_bytes_max: u64,
    /// Cluster mode's replicated commit (`crate::cluster`): a record is acknowledged once it is
    /// durable locally AND in the cluster's log. `None` (single node): the local fsync only.
    pub replication: Option<Arc<dyn ReplicatedCommit>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("./data"),
            wal: wal::WalConfig::default(),
            storage: None,
            mailbox_capacity: 4096,
            batch_max: 512,
            mailbox_wait_ms: 2000,
            passivate_after_ms: 30_000,
            order_passivate_after_ms: 2_000,
            placement_attempts_max: 4,
            snapshot_every_records: 500_000,
            snapshot_every_ms: 300_000,
            default_carrier: "standard".into(),
            gateway_timeout_ms: 10_000,
            feed_capacity: 16_384,
            feed_bytes_max: 64 * 1024 * 1024,
            stream_replays_max: 16,
            idempotency: IdempotencyLimits::default(),
            subscriber_retention_bytes_max: SUBSCRIBER_RETENTION_BYTES_MAX,
            replication: None,
        }
    }
}
