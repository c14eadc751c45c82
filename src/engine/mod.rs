//! The runtime: actors for SKU-warehouse pairs and orders, the placement coordinator, the log
//! shell, expiry, snapshots and recovery. [`Engine`] is the async handle the HTTP layer, tests
//! and benchmarks use.
//!
//! Architecture invariant (commit order): decide, append to the log, wait until durable, apply,
//! reply. Nothing is acknowledged before its record is durable; a failed append poisons the log
//! and from then on every mutation answers `Unavailable`.

mod cell;
pub mod clock;
mod expiry;
#[cfg(test)]
mod fault_tests;
mod feed;
pub mod gateway;
mod idempotency;
mod orders;
mod pairs;
mod recovery;
mod settler;
mod snapshot;

pub use clock::{Clock, ManualClock, SystemClock};
pub use feed::{Committed, RecvError, ReplayPermit, Subscription};
pub use gateway::{PaymentGateway, SimulatedGateway, SimulatedGatewayConfig};
pub use idempotency::{Claim, IdemSpec, IdempotencyLimits, KeyHold, RETENTION_MS, Render};
pub use settler::{SETTLE_DELAY_MS_MAX, SETTLE_DELAY_MS_MIN, Unsettled};

use crate::codec;
use crate::domain::order::{Allocation, LineQty, NewOrder};
use crate::domain::placement::{Site, allocate};
use crate::domain::{
    EngineState, Entry, FastMap, Key, Millis, Order, OrderId, OrderStatus, Record, Rejection, ShortLine, Sku, UserId,
    Warehouse, WarehouseId,
};
use feed::Feed;
use orders::{OrderCell, OrderMsg};
use pairs::{Pair, PairMsg};
use parking_lot::RwLock;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
        }
    }
}

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

/// One pair's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairView {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

/// A SKU across warehouses.
#[derive(Clone, Debug)]
pub struct SkuView {
    pub sku: Sku,
    pub total_available: u64,
    pub warehouses: Vec<PairView>,
}

/// A warehouse as the client sends it.
#[derive(Clone, Debug)]
pub struct WarehouseInput {
    pub id: WarehouseId,
    pub name: String,
    pub country: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
    pub carrier: Option<String>,
}

/// A lifecycle request to an existing order.
#[derive(Clone, Debug)]
pub enum OrderRequest {
    Pay {
        token: String,
    },
    Cancel {
        reason: String,
    },
    Fulfill,
    Ship {
        shipment_id: String,
        carrier: Option<String>,
        tracking_number: Option<String>,
    },
    Deliver {
        shipment_id: String,
    },
    RequestReturn {
        items: Vec<LineQty>,
        reason: String,
    },
    ApproveReturn {
        return_id: String,
    },
    RejectReturn {
        return_id: String,
        reason: String,
    },
    ReceiveReturn {
        return_id: String,
        warehouse_id: WarehouseId,
        restock: bool,
    },
    Refund {
        amount: Decimal,
        return_id: Option<String>,
        reason: String,
    },
}

/// The order after a lifecycle request.
#[derive(Clone, Debug)]
pub struct OrderOutcome {
    pub order: Arc<Order>,
    /// Id of what the request created (`RET-…`, `REF-…`), if anything.
    pub created: Option<String>,
    /// Set when a payment was declined: the order is now cancelled and the client gets a 402.
    pub declined: Option<String>,
}

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub wal: Option<wal::WalStats>,
    pub pair_actors_active: u64,
    pub order_actors_active: u64,
    pub pairs: u64,
    pub orders: u64,
    pub mailbox_full_total: u64,
    pub recovery_ms: u64,
    pub recovered_records: u64,
    pub snapshots_taken: u64,
    pub placements_retried_total: u64,
    /// Stored idempotent responses, their approximate bytes, and how many were forgotten
    /// before 24 h because a bound was reached.
    pub idempotency_keys: u64,
    pub idempotency_bytes: u64,
    pub idempotency_evicted_early_total: u64,
    /// Expiries answered with an error (busy mailbox, unsettled payment, clock behind) and
    /// tried again later.
    pub expiry_retries_total: u64,
    /// Actors that crashed (panicked); while non-zero the engine acknowledges nothing.
    pub dead_actors: u64,
}

/// Shared by every actor and the handle: the log, the feed, the registries.
pub(crate) struct Core {
    pub(crate) config: EngineConfig,
    pub(crate) wal: wal::Wal,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) feed: Feed,
    /// Pairs by key and by SKU. A std-style lock (parking_lot) because it is held only for map
    /// lookups and inserts, never across an await.
    pub(crate) pairs: RwLock<PairRegistry>,
    /// Order cells, sharded by number to spread lock traffic.
    pub(crate) orders: Vec<RwLock<FastMap<OrderId, Arc<OrderCell>>>>,
    pub(crate) warehouses: RwLock<BTreeMap<WarehouseId, Warehouse>>,
    /// Serializes warehouse upserts (rare) so created_at/updated_at are decided on fresh state.
    pub(crate) warehouse_write: tokio::sync::Mutex<()>,
    /// Stored idempotent responses and the keys of requests in flight.
    pub(crate) idempotency: Arc<idempotency::Idempotency>,
    pub(crate) next_order_seq: AtomicU64,
    pub(crate) expiry: expiry::Expiry,
    /// Orders whose payment or refund outcome is unknown, for the background settler. Shared
    /// (`Arc`) so the settler's loop can wait on it without keeping the core alive.
    pub(crate) settler: Arc<settler::SettleQueue>,
    pub(crate) counters: Counters,
    pub(crate) closed: AtomicBool,
    /// Actors that ended without storing their state (a panic). Shared with every mailbox,
    /// which counts its own death. Once it is non-zero the engine acknowledges nothing more:
    /// the lost state is rebuilt only by recovery, after a restart (crash-only).
    pub(crate) dead_actors: Arc<AtomicU64>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) pair_actors_active: AtomicU64,
    pub(crate) order_actors_active: AtomicU64,
    pub(crate) mailbox_full_total: AtomicU64,
    pub(crate) recovery_ms: AtomicU64,
    pub(crate) recovered_records: AtomicU64,
    pub(crate) snapshots_taken: AtomicU64,
    pub(crate) placements_retried_total: AtomicU64,
    pub(crate) expiry_retries_total: AtomicU64,
}

#[derive(Default)]
pub(crate) struct PairRegistry {
    pub(crate) by_key: FastMap<(Sku, WarehouseId), Arc<Pair>>,
    pub(crate) by_sku: FastMap<Sku, Vec<Arc<Pair>>>,
}

const ORDER_SHARDS: usize = 64;

impl Core {
    /// Appends `record`, waits until it is durable and records its idempotent response. The
    /// only way anything reaches the log. The record is published to the feed when the
    /// returned [`Durable`] is dropped: callers apply the change first, so an event is never
    /// seen before the state it describes can be read.
    pub(crate) async fn append(self: &Arc<Self>, record: Record) -> Result<Durable, EngineError> {
        let encoded = codec::encode_record(&record);
        let bytes = encoded.len();
        let ticket = self.wal.append(encoded);
        let lsn = ticket
            .await
            .map_err(|e| EngineError::Unavailable(format!("the log cannot be written: {e}")))?;
        let record = Arc::new(record);
        if let Some(idem) = &record.idempotency {
            self.idempotency.record(idem);
        }
        Ok(Durable {
            core: self.clone(),
            lsn,
            bytes,
            record: Some(record),
        })
    }

    /// Sends `msg` to an actor mailbox, waiting up to `mailbox_wait_ms` for room.
    pub(crate) async fn send<M>(&self, tx: &mpsc::Sender<M>, msg: M) -> Result<(), SendFail<M>> {
        match tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(m)) => Err(SendFail::Closed(m)),
            Err(mpsc::error::TrySendError::Full(m)) => {
                self.counters.mailbox_full_total.fetch_add(1, Ordering::Relaxed);
                let wait = Duration::from_millis(self.config.mailbox_wait_ms);
                match tokio::time::timeout(wait, tx.reserve()).await {
                    Ok(Ok(permit)) => {
                        permit.send(m);
                        Ok(())
                    }
                    Ok(Err(_)) => Err(SendFail::Closed(m)),
                    Err(_) => Err(SendFail::Busy),
                }
            }
        }
    }

    fn order_shard(&self, id: OrderId) -> &RwLock<FastMap<OrderId, Arc<OrderCell>>> {
        &self.orders[(id.0 as usize) % ORDER_SHARDS]
    }

    pub(crate) fn order_cell(&self, id: OrderId) -> Option<Arc<OrderCell>> {
        self.order_shard(id).read().get(&id).cloned()
    }

    pub(crate) fn pair(&self, sku: &Sku, wh: &WarehouseId) -> Option<Arc<Pair>> {
        self.pairs.read().by_key.get(&(sku.clone(), wh.clone())).cloned()
    }

    /// The pair for (sku, wh), created empty if it does not exist yet.
    pub(crate) fn pair_or_create(&self, sku: &Sku, wh: &WarehouseId) -> Arc<Pair> {
        if let Some(p) = self.pair(sku, wh) {
            return p;
        }
        let mut reg = self.pairs.write();
        if let Some(p) = reg.by_key.get(&(sku.clone(), wh.clone())) {
            return p.clone();
        }
        // Share one allocation per name: the SKU's with its other pairs, the warehouse's with
        // the warehouse registry (a million pairs should not mean two million strings).
        let sku = reg
            .by_sku
            .get_key_value(sku)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| sku.clone());
        let wh = self
            .warehouses
            .read()
            .get_key_value(wh)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| wh.clone());
        let p = Arc::new(Pair::new(sku.clone(), wh.clone(), Default::default()));
        reg.by_key.insert((sku.clone(), wh), p.clone());
        reg.by_sku.entry(sku).or_default().push(p.clone());
        p
    }

    /// Sends a pair message, activating the pair's actor as needed; waits at most
    /// `mailbox_wait_ms` for room, then answers `Busy`.
    pub(crate) async fn to_pair(self: &Arc<Self>, pair: &Arc<Pair>, mut msg: PairMsg) -> Result<(), EngineError> {
        loop {
            let tx = pair.sender(self).map_err(|_| pair_dead(pair))?;
            match self.send(&tx, msg).await {
                Ok(()) => return Ok(()),
                // Refused by a closing or ended actor: the cell has moved on (cell.rs, step 5).
                Err(SendFail::Closed(m)) => msg = m,
                Err(SendFail::Busy) => {
                    return Err(EngineError::Busy(format!(
                        "inventory {}@{} is busy",
                        pair.sku, pair.warehouse_id
                    )));
                }
            }
        }
    }

    /// Sends a pair message that must not be lost (a durable fact, or the release of a hold),
    /// waiting for room however long the mailbox stays full. Fails only if the pair's actor
    /// is dead, which stops the engine anyway.
    pub(crate) async fn deliver_to_pair(
        self: &Arc<Self>,
        pair: &Arc<Pair>,
        mut msg: PairMsg,
    ) -> Result<(), EngineError> {
        loop {
            let tx = pair.sender(self).map_err(|_| pair_dead(pair))?;
            match tx.send(msg).await {
                Ok(()) => return Ok(()),
                Err(refused) => msg = refused.0,
            }
        }
    }

    /// Sends an order message, activating the order's actor as needed.
    pub(crate) async fn to_order(
        self: &Arc<Self>,
        cell: &Arc<OrderCell>,
        mut msg: OrderMsg,
    ) -> Result<(), EngineError> {
        loop {
            let tx = orders::sender(self, cell).map_err(|_| {
                EngineError::Unavailable(format!(
                    "order {} is unavailable: its actor crashed; the engine must be restarted",
                    cell.id
                ))
            })?;
            match self.send(&tx, msg).await {
                Ok(()) => return Ok(()),
                Err(SendFail::Closed(m)) => msg = m,
                Err(SendFail::Busy) => return Err(EngineError::Busy(format!("order {} is busy", cell.id))),
            }
        }
    }

    fn check_open(&self) -> Result<(), EngineError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable("the engine is shutting down".into()));
        }
        let dead = self.dead_actors.load(Ordering::Relaxed);
        if dead > 0 {
            return Err(EngineError::Unavailable(format!(
                "{dead} actor(s) crashed; the engine accepts nothing until it is restarted"
            )));
        }
        if let Some(why) = self.wal.poisoned() {
            return Err(EngineError::Unavailable(format!("the log cannot be written: {why}")));
        }
        Ok(())
    }
}

fn pair_dead(pair: &Pair) -> EngineError {
    EngineError::Unavailable(format!(
        "inventory {}@{} is unavailable: its actor crashed; the engine must be restarted",
        pair.sku, pair.warehouse_id
    ))
}

/// A durable record waiting to be published; dropping it publishes it, on every path (early
/// returns included), because a durable record the feed never sees would stall the feed.
pub(crate) struct Durable {
    core: Arc<Core>,
    lsn: u64,
    /// Encoded size, what the feed's byte bound counts.
    bytes: usize,
    record: Option<Arc<Record>>,
}

impl Drop for Durable {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.core.feed.publish(self.lsn, record, self.bytes);
        }
    }
}

pub(crate) enum SendFail<M> {
    Closed(M),
    Busy,
}

/// The engine handle. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    core: Arc<Core>,
    _lock: Arc<std::fs::File>,
}

impl Engine {
    /// Opens the data directory (taking its lock), recovers (newest snapshot + log replay) and
    /// starts the background tasks. Must be called inside a tokio runtime.
    pub async fn open(
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
    ) -> Result<Engine, EngineError> {
        recovery::open(config, clock, gateway).await
    }

    fn core(&self) -> &Arc<Core> {
        &self.core
    }

    pub fn now(&self) -> Millis {
        self.core.clock.now()
    }

    /// Orders whose payment or refund outcome is unknown and that the background settler is
    /// working on, with when it tries next.
    pub fn unsettled_payments(&self) -> Vec<Unsettled> {
        self.core.settler.snapshot()
    }

    /// Claims an idempotency key for a request with `fingerprint`: waits while another
    /// request holds the key, then answers replay, conflict, or run (holding the key).
    pub async fn claim_idempotency_key(&self, key: String, fingerprint: [u8; 32]) -> Claim {
        let now = self.core.clock.now();
        self.core.idempotency.claim(key, fingerprint, now).await
    }

    /// Cancellation-safe like [`Engine::place_order`].
    pub async fn upsert_warehouse(
        &self,
        input: WarehouseInput,
        idem: Option<IdemSpec<Warehouse>>,
    ) -> Result<Warehouse, EngineError> {
        let engine = self.clone();
        tokio::spawn(async move { engine.upsert_warehouse_to_the_end(input, idem).await })
            .await
            .map_err(|e| EngineError::Unavailable(format!("warehouse task failed: {e}")))?
    }

    async fn upsert_warehouse_to_the_end(
        &self,
        input: WarehouseInput,
        idem: Option<IdemSpec<Warehouse>>,
    ) -> Result<Warehouse, EngineError> {
        let core = self.core();
        core.check_open()?;
        let _w = core.warehouse_write.lock().await;
        let now = core.clock.now();
        let created_at = core
            .warehouses
            .read()
            .get(&input.id)
            .map(|w| w.created_at)
            .unwrap_or(now);
        let warehouse = Warehouse {
            id: input.id,
            name: input.name,
            country: input.country,
            lat: input.lat,
            lon: input.lon,
            priority: input.priority,
            carrier: input.carrier,
            created_at,
            updated_at: now,
        };
        let idempotency = idem.map(|i| i.record(&warehouse, now));
        let record = Record {
            entry: Entry::WarehouseUpserted {
                warehouse: warehouse.clone(),
            },
            idempotency,
        };
        let durable = core.append(record).await?;
        core.warehouses.write().insert(warehouse.id.clone(), warehouse.clone());
        drop(durable);
        Ok(warehouse)
    }

    pub fn warehouses(&self) -> Vec<Warehouse> {
        self.core.warehouses.read().values().cloned().collect()
    }

    pub fn warehouse(&self, id: &WarehouseId) -> Option<Warehouse> {
        self.core.warehouses.read().get(id).cloned()
    }

    fn require_warehouse(&self, id: &WarehouseId, field: &str) -> Result<(), EngineError> {
        if self.core.warehouses.read().contains_key(id) {
            Ok(())
        } else {
            Err(Rejection::Validation(vec![crate::domain::FieldError::new(
                field,
                format!("unknown warehouse {id}"),
            )])
            .into())
        }
    }

    /// Adds `delta` to a pair's on-hand count (negative removes; may not go below reserved).
    pub async fn adjust_inventory(
        &self,
        sku: Sku,
        warehouse_id: WarehouseId,
        delta: i64,
        reason: String,
        idem: Option<IdemSpec<PairView>>,
    ) -> Result<PairView, EngineError> {
        self.change_inventory(sku, warehouse_id, pairs::Change::Delta(delta), reason, idem)
            .await
    }

    /// Sets a pair's on-hand count (may not go below reserved).
    pub async fn set_inventory(
        &self,
        sku: Sku,
        warehouse_id: WarehouseId,
        on_hand: u64,
        idem: Option<IdemSpec<PairView>>,
    ) -> Result<PairView, EngineError> {
        self.change_inventory(
            sku,
            warehouse_id,
            pairs::Change::Set(on_hand),
            format!("count set to {on_hand}"),
            idem,
        )
        .await
    }

    async fn change_inventory(
        &self,
        sku: Sku,
        wh: WarehouseId,
        change: pairs::Change,
        reason: String,
        idem: Option<IdemSpec<PairView>>,
    ) -> Result<PairView, EngineError> {
        let core = self.core();
        core.check_open()?;
        self.require_warehouse(&wh, "warehouse_id")?;
        let pair = match core.pair(&sku, &wh) {
            Some(pair) => pair,
            None => {
                // A pair that was never stocked holds nothing and nothing is pending at it:
                // decide against an empty one first, so a refused change leaves no pair behind
                // (the SKU stays unknown, its memory unspent). The pair's actor decides again.
                let empty = crate::domain::Inventory::default();
                let (decided, field) = match change {
                    pairs::Change::Delta(d) => (empty.decide_adjust(d, 0), "delta"),
                    pairs::Change::Set(n) => (empty.decide_set(n, 0, 0), "on_hand"),
                };
                decided.map_err(|r| pairs::change_rejection(&sku, r, field))?;
                core.pair_or_create(&sku, &wh)
            }
        };
        let (reply, rx) = oneshot::channel();
        core.to_pair(
            &pair,
            PairMsg::Change(Box::new(pairs::ChangeRequest {
                change,
                reason,
                idem,
                reply,
            })),
        )
        .await?;
        rx.await
            .map_err(|_| EngineError::Unavailable("inventory actor ended".into()))?
    }

    /// A SKU's counts in every warehouse that has held it.
    pub async fn inventory(&self, sku: &Sku) -> Result<SkuView, EngineError> {
        let pairs: Vec<Arc<Pair>> = self.core.pairs.read().by_sku.get(sku).cloned().unwrap_or_default();
        if pairs.is_empty() {
            return Err(Rejection::NotFound(format!("inventory for sku {sku}")).into());
        }
        let mut warehouses = Vec::with_capacity(pairs.len());
        for p in pairs {
            warehouses.push(p.view(&self.core).await?);
        }
        warehouses.sort_by(|a, b| a.warehouse_id.cmp(&b.warehouse_id));
        let total_available = warehouses.iter().map(|w| w.available).sum();
        Ok(SkuView {
            sku: sku.clone(),
            total_available,
            warehouses,
        })
    }

    /// Places an order: allocates, holds stock at every pair, commits the placement in one log
    /// record, then turns the holds into reservations. All lines or none.
    ///
    /// Cancellation-safe: the work runs in its own task, so a caller that goes away (an HTTP
    /// client disconnecting) cannot stop a placement between its append and its commit, which
    /// would leave holds behind and a durable record the feed never publishes.
    pub async fn place_order(
        &self,
        new: NewOrder,
        idem: Option<IdemSpec<Arc<Order>>>,
    ) -> Result<Arc<Order>, EngineError> {
        // What can be refused without touching an actor is refused here, without a task: a
        // sold-out flash sale is mostly such refusals.
        self.core.check_open()?;
        new.validate()?;
        let lines: Vec<(Sku, u64)> = new.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
        let available = self.available_hints(&lines);
        let mut want: HashMap<&Sku, u64> = HashMap::new();
        for (sku, q) in &lines {
            *want.entry(sku).or_insert(0) += q;
        }
        let short = want.iter().any(|(sku, q)| {
            *q > available
                .iter()
                .filter(|((s, _), _)| s == *sku)
                .map(|(_, a)| *a)
                .sum::<u64>()
        });
        if short {
            return Err(Rejection::InsufficientStock(short_lines(&lines, &available)).into());
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.place_order_to_the_end(new, idem).await })
            .await
            .map_err(|e| EngineError::Unavailable(format!("placement task failed: {e}")))?
    }

    async fn place_order_to_the_end(
        &self,
        new: NewOrder,
        idem: Option<IdemSpec<Arc<Order>>>,
    ) -> Result<Arc<Order>, EngineError> {
        let core = self.core();
        core.check_open()?;
        new.validate()?;
        let id = OrderId(core.next_order_seq.fetch_add(1, Ordering::Relaxed));
        let lines: Vec<(Sku, u64)> = new.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect();
        let ship_to = new.shipping_address.lat.zip(new.shipping_address.lon);
        let sites: Vec<Site> = core
            .warehouses
            .read()
            .values()
            .map(|w| Site {
                id: w.id.clone(),
                lat: w.lat,
                lon: w.lon,
                priority: w.priority,
            })
            .collect();
        let mut attempt = 0;
        let (allocations, held) = loop {
            attempt += 1;
            let available = self.available_hints(&lines);
            let plan = match allocate(&lines, &sites, &available, ship_to) {
                Ok(plan) => plan,
                Err(short) => return Err(Rejection::InsufficientStock(short).into()),
            };
            match self.hold(id, &plan, &lines).await {
                Ok(held) => break (plan, held),
                Err(HoldFailure::Engine(e)) => return Err(e),
                Err(HoldFailure::Lost) if attempt < core.config.placement_attempts_max => {
                    core.counters.placements_retried_total.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(HoldFailure::Lost) => {
                    let available = self.available_hints(&lines);
                    return Err(Rejection::InsufficientStock(short_lines(&lines, &available)).into());
                }
            }
        };
        let now = core.clock.now();
        let order = Arc::new(new.into_order(id, allocations, now));
        let idempotency = idem.map(|i| i.record(&order, now));
        let record = Record {
            // One allocation shared by the log record, the order's cell and the reply.
            entry: Entry::OrderPlaced { order: order.clone() },
            idempotency,
        };
        let durable = match core.append(record).await {
            Ok(d) => d,
            Err(e) => {
                release_holds(core, &held, id).await;
                return Err(e);
            }
        };
        // Durable: the holds become reservations. Sent before the order is registered, so any
        // later message about this order reaches each pair after its CommitHold; and a durable
        // fact must reach the pair however long its mailbox is. Only a dead pair refuses it,
        // and then the engine stops acknowledging anything (the placement is durable: a
        // restart's recovery reserves it).
        for pair in &held {
            core.deliver_to_pair(pair, PairMsg::CommitHold { order: id }).await?;
        }
        let cell = Arc::new(OrderCell::new(order.clone()));
        core.order_shard(id).write().insert(id, cell);
        core.expiry.schedule(id, order.reservation_expires_at);
        // Published only now: a subscriber that hears `order.created` can read the order.
        drop(durable);
        Ok(order)
    }

    fn available_hints(&self, lines: &[(Sku, u64)]) -> HashMap<(Sku, WarehouseId), u64> {
        let reg = self.core.pairs.read();
        let mut out = HashMap::new();
        for (sku, _) in lines {
            for p in reg.by_sku.get(sku).into_iter().flatten() {
                out.insert((sku.clone(), p.warehouse_id.clone()), p.available_hint());
            }
        }
        out
    }

    /// Holds the plan at every pair; on any refusal releases what was held.
    async fn hold(
        &self,
        id: OrderId,
        plan: &[Vec<Allocation>],
        lines: &[(Sku, u64)],
    ) -> Result<Vec<Arc<Pair>>, HoldFailure> {
        let core = self.core();
        let mut per_pair: BTreeMap<(Sku, WarehouseId), u64> = BTreeMap::new();
        for ((sku, _), allocs) in lines.iter().zip(plan) {
            for a in allocs {
                *per_pair.entry((sku.clone(), a.warehouse_id.clone())).or_insert(0) += a.quantity;
            }
        }
        let mut waiting = Vec::with_capacity(per_pair.len());
        let mut failure = None;
        for ((sku, wh), quantity) in per_pair {
            let pair = core.pair_or_create(&sku, &wh);
            let (reply, rx) = oneshot::channel();
            match core
                .to_pair(
                    &pair,
                    PairMsg::Hold {
                        order: id,
                        quantity,
                        reply,
                    },
                )
                .await
            {
                Ok(()) => waiting.push((pair, rx)),
                Err(e) => {
                    failure = Some(HoldFailure::Engine(e));
                    break;
                }
            }
        }
        let mut held = Vec::with_capacity(waiting.len());
        for (pair, rx) in waiting {
            match rx.await {
                Ok(true) => held.push(pair),
                Ok(false) => failure = failure.or(Some(HoldFailure::Lost)),
                Err(_) => {
                    failure = Some(HoldFailure::Engine(EngineError::Unavailable(
                        "inventory actor ended".into(),
                    )))
                }
            }
        }
        match failure {
            None => Ok(held),
            Some(f) => {
                release_holds(core, &held, id).await;
                Err(f)
            }
        }
    }

    pub async fn order(&self, id: OrderId) -> Result<Arc<Order>, EngineError> {
        let cell = self
            .core
            .order_cell(id)
            .ok_or_else(|| Rejection::NotFound(format!("order {id}")))?;
        orders::read(&self.core, &cell).await
    }

    /// Orders newest first, optionally filtered, strictly older than `cursor`. Returns the page
    /// and the cursor of the next page (None at the end).
    pub async fn list_orders(
        &self,
        user: Option<&UserId>,
        status: Option<OrderStatus>,
        cursor: Option<OrderId>,
        limit: usize,
    ) -> Result<(Vec<Arc<Order>>, Option<OrderId>), EngineError> {
        let ids = self.core.feed.indexes.read().list(user, status, cursor, limit + 1);
        let more = ids.len() > limit;
        let mut out = Vec::with_capacity(limit);
        for id in ids.into_iter().take(limit) {
            match self.order(id).await {
                Ok(o) => out.push(o),
                // Indexed when its record was published, registered a moment later: a
                // placement still finishing is not listed yet.
                Err(EngineError::Rejected(Rejection::NotFound(_))) => continue,
                Err(e) => return Err(e),
            }
        }
        let next = if more { out.last().map(|o| o.id) } else { None };
        Ok((out, next))
    }

    /// Runs a lifecycle request on an order.
    pub async fn order_request(
        &self,
        id: OrderId,
        request: OrderRequest,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        let core = self.core();
        core.check_open()?;
        if let OrderRequest::ReceiveReturn { warehouse_id, .. } = &request {
            self.require_warehouse(warehouse_id, "warehouse_id")?;
        }
        let cell = core
            .order_cell(id)
            .ok_or_else(|| Rejection::NotFound(format!("order {id}")))?;
        let (reply, rx) = oneshot::channel();
        core.to_order(
            &cell,
            OrderMsg::Request {
                request: orders::Internal::Client(request),
                idem,
                reply,
            },
        )
        .await?;
        rx.await
            .map_err(|_| EngineError::Unavailable("order actor ended".into()))?
    }

    /// A receiver of every record made durable from now on, and the last LSN before it.
    pub fn subscribe(&self) -> (Subscription, u64) {
        self.core.feed.subscribe()
    }

    /// Leave to replay history from the log for an event stream, or `Busy` when
    /// `stream_replays_max` streams are replaying already. Hold it while reading history.
    pub fn replay_permit(&self) -> Result<ReplayPermit, EngineError> {
        self.core.feed.try_replay().ok_or_else(|| {
            EngineError::Busy(format!(
                "{} event streams are replaying the log already",
                self.core.config.stream_replays_max
            ))
        })
    }

    /// Durable records from `from` (inclusive) up to `to` (inclusive), read from the log.
    /// Records older than the log's retained start are gone (covered by a snapshot); the first
    /// LSN still readable is returned with them.
    pub fn read_log(&self, from: u64, to: u64, max: usize) -> Result<(u64, Vec<Committed>), EngineError> {
        let first = self.core.wal.first_lsn();
        let start = from.max(first);
        let mut out = Vec::new();
        if start > to {
            return Ok((first, out));
        }
        let reader = self
            .core
            .wal
            .read_from(start)
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        for item in reader {
            let (lsn, bytes) = item.map_err(|e| EngineError::Unavailable(e.to_string()))?;
            if lsn > to || out.len() >= max {
                break;
            }
            let record =
                codec::decode_record(&bytes).map_err(|e| EngineError::Unavailable(format!("record {lsn}: {e}")))?;
            out.push(Committed {
                lsn,
                record: Arc::new(record),
            });
        }
        Ok((first, out))
    }

    /// True while the log accepts writes.
    pub fn writable(&self) -> bool {
        self.core.check_open().is_ok()
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.core.counters;
        let idem = self.core.idempotency.stats();
        EngineStats {
            wal: Some(self.core.wal.stats()),
            pair_actors_active: c.pair_actors_active.load(Ordering::Relaxed),
            order_actors_active: c.order_actors_active.load(Ordering::Relaxed),
            pairs: self.core.pairs.read().by_key.len() as u64,
            orders: self.core.orders.iter().map(|s| s.read().len() as u64).sum(),
            mailbox_full_total: c.mailbox_full_total.load(Ordering::Relaxed),
            recovery_ms: c.recovery_ms.load(Ordering::Relaxed),
            recovered_records: c.recovered_records.load(Ordering::Relaxed),
            snapshots_taken: c.snapshots_taken.load(Ordering::Relaxed),
            placements_retried_total: c.placements_retried_total.load(Ordering::Relaxed),
            idempotency_keys: idem.keys,
            idempotency_bytes: idem.bytes,
            idempotency_evicted_early_total: idem.evicted_early_total,
            expiry_retries_total: c.expiry_retries_total.load(Ordering::Relaxed),
            dead_actors: self.core.dead_actors.load(Ordering::Relaxed),
        }
    }

    /// Gathers the live state from every actor: what the actors hold, for comparison with a
    /// replay of the log (tests) and for the snapshot format.
    pub async fn export_state(&self) -> Result<EngineState, EngineError> {
        let core = self.core();
        let mut state = EngineState::new();
        state.next_lsn = core.feed.published_lsn() + 1;
        state.warehouses = core.warehouses.read().clone();
        let pairs: Vec<Arc<Pair>> = core.pairs.read().by_key.values().cloned().collect();
        for p in pairs {
            let inv = p.inventory(core).await?;
            state.inventory.insert((p.sku.clone(), p.warehouse_id.clone()), inv);
        }
        let cells: Vec<Arc<OrderCell>> = core
            .orders
            .iter()
            .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
            .collect();
        for c in cells {
            let o = orders::read(core, &c).await?;
            state.last_order_seq = state.last_order_seq.max(o.id.0);
            state.orders.insert(o.id, o);
        }
        state.idempotency = core.idempotency.export();
        Ok(state)
    }

    /// Replays the whole retained log (from the newest snapshot) into a fresh state: what
    /// recovery would build now.
    pub fn replay_state(&self) -> Result<EngineState, EngineError> {
        recovery::fold_log(&self.core.wal, self.core.config.idempotency).map(|(s, _)| s)
    }

    /// Takes a snapshot now (blocking the calling task's thread; use from `spawn_blocking`).
    pub fn snapshot_now(&self) -> Result<u64, EngineError> {
        snapshot::take(&self.core)
    }

    /// Stops accepting mutations, flushes the log and closes it.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.core.closed.store(true, Ordering::Release);
        self.core.expiry.wake();
        self.core.settler.wake();
        let wal = self.core.wal.clone();
        tokio::task::spawn_blocking(move || wal.close())
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .map_err(|e| EngineError::Unavailable(e.to_string()))
    }
}

/// Releases the holds of a placement that failed. Every release is delivered, however full
/// the pair's mailbox: one lost would hold its stock forever and keep the pair from ever going
/// idle. A dead pair cannot take it, but its hold died with it.
async fn release_holds(core: &Arc<Core>, held: &[Arc<Pair>], order: OrderId) {
    for pair in held {
        if let Err(e) = core.deliver_to_pair(pair, PairMsg::ReleaseHold { order }).await {
            tracing::warn!(%order, error = %e, "could not release a hold");
        }
    }
}

enum HoldFailure {
    /// Another placement took the stock between allocation and hold.
    Lost,
    Engine(EngineError),
}

fn short_lines(lines: &[(Sku, u64)], available: &HashMap<(Sku, WarehouseId), u64>) -> Vec<ShortLine> {
    let mut want: HashMap<&Sku, u64> = HashMap::new();
    for (sku, q) in lines {
        *want.entry(sku).or_insert(0) += q;
    }
    let mut out: Vec<ShortLine> = lines
        .iter()
        .filter_map(|(sku, q)| {
            let total: u64 = available.iter().filter(|((s, _), _)| s == sku).map(|(_, a)| *a).sum();
            (want[sku] > total).then(|| ShortLine {
                sku: sku.clone(),
                requested: *q,
                available: total,
            })
        })
        .collect();
    if out.is_empty() {
        // Lost every race without a line being short overall: report the lines as they stand.
        out = lines
            .iter()
            .map(|(sku, q)| ShortLine {
                sku: sku.clone(),
                requested: *q,
                available: available.iter().filter(|((s, _), _)| s == sku).map(|(_, a)| *a).sum(),
            })
            .collect();
    }
    out
}

/// Parses a client key, mapping failure to a validation rejection on `field`.
pub fn parse_key(field: &str, s: &str) -> Result<Key, Rejection> {
    Key::parse(s).map_err(|m| Rejection::Validation(vec![crate::domain::FieldError::new(field, m)]))
}
