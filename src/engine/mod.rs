//! The runtime: actors for SKU-warehouse pairs and orders, the placement coordinator, the log
//! shell, expiry, snapshots and recovery. [`Engine`] is the async handle the HTTP layer, tests
//! and benchmarks use; this file holds only the handle, each of its calls one step into the
//! module that owns the work.
//!
//! Architecture invariant (commit order): decide, append to the log, wait until durable, apply,
//! reply. Nothing is acknowledged before its record is durable; a failed append poisons the log
//! and from then on every mutation answers `Unavailable`.
//!
//! # Layout
//! The files depend on each other one way (a test keeps it so: `tests/layout.rs`):
//! - `config.rs`, `error.rs`, `clock.rs`, `gateway.rs`, `cell.rs`, `feed.rs`,
//!   `idempotency.rs`, `expiry/queue.rs`, `settler/queue.rs`: leaves;
//! - `core.rs`: the log shell (`Core::append`, `Durable`), shared by everything above it;
//! - `pairs.rs`, then `orders.rs` (with `orders/payment.rs`): the actors and their registries;
//! - `sales/registry.rs`: the flash-sale desk (a leaf the core holds); `sales.rs`: sale
//!   definitions, the sale clock and figures;
//! - `placement.rs`, `warehouses.rs`, `views.rs`, `expiry.rs`, `settler.rs`: what drives or
//!   reads the actors; `replay.rs`, `snapshot.rs`: the fold of the log;
//! - `recovery.rs`: opens the directory and builds everything; this file: the handle.

mod cell;
pub mod clock;
mod config;
mod core;
mod error;
mod expiry;
#[cfg(test)]
mod fault_tests;
mod feed;
pub mod gateway;
mod idempotency;
mod orders;
mod pairs;
mod placement;
mod recovery;
mod replay;
mod replication;
mod sales;
mod settler;
mod snapshot;
mod subscriber;
mod views;
mod warehouses;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{EngineConfig, SUBSCRIBER_RETENTION_BYTES_MAX};
pub use error::{Actor, Busy, EngineError, GatewayCall, OpenError, OutcomeUnknown, Unavailable, UnknownCause};
pub use feed::{Committed, OrderFilter, RecvError, ReplayPermit, Subscription};
pub use gateway::{PaymentGateway, SimulatedGateway, SimulatedGatewayConfig};
pub use idempotency::{Claim, IdemSpec, IdempotencyLimits, KeyHold, RETENTION_MS, Render};
pub use orders::{OrderOutcome, OrderRequest};
pub use pairs::PairView;
pub use replication::{Replicated, ReplicatedCommit};
pub use sales::{SalePhase, SaleView};
pub use settler::{SETTLE_DELAY_MS_MAX, SETTLE_DELAY_MS_MIN, Unsettled};
pub use subscriber::registry::{SUBSCRIBER_NAME_BYTES_MAX, SubscriberError, SubscriberInfo};
pub use subscriber::{LogSubscriber, SubscriberAcker};
pub use views::{EngineStats, PAIR_SCAN_MAX, PairFilter, SkuView};
pub use warehouses::WarehouseInput;

use self::core::{Core, run_detached};
use crate::domain::order::NewOrder;
use crate::domain::sale::{Sale, SaleInput};
use crate::domain::{EngineState, Millis, Order, OrderId, OrderStatus, SaleId, Sku, UserId, Warehouse, WarehouseId};
use orders::Orders;
use pairs::{Change, Pairs};
use placement::Placement;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The engine handle. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    core: Arc<Core>,
    pairs: Arc<Pairs>,
    orders: Arc<Orders>,
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
        let recovered = recovery::open(config, clock, gateway).await?;
        Ok(Engine {
            core: recovered.core,
            pairs: recovered.pairs,
            orders: recovered.orders,
            _lock: Arc::new(recovered.lock),
        })
    }

    /// Cluster mode's standby: the data directory's lock and log, opened (and checked) as
    /// recovery opens them but not recovered; the standby appends the primary's records to it
    /// and closes it before it takes over with [`Engine::open`]. Blocking.
    pub fn open_log(config: &EngineConfig) -> Result<(std::fs::File, wal::Wal), EngineError> {
        let (lock, wal, _subscribers) = recovery::open_dir(config)?;
        Ok((lock, wal))
    }

    pub fn now(&self) -> Millis {
        self.core.clock.now()
    }

    /// Orders whose payment or refund outcome is unknown and that the background settler is
    /// working on, with when it tries next.
    pub fn unsettled_payments(&self) -> Vec<Unsettled> {
        self.core.settler.snapshot()
    }

    /// True when no reservation expiry and no payment settlement is due at the clock's `now`
    /// or being carried out: the background work a move of the clock started is done. What a
    /// simulation driving a `ManualClock` waits for before it checks the state.
    pub fn background_idle(&self) -> bool {
        let now = self.core.clock.now();
        self.core.expiry.idle_at(now)
            && self
                .core
                .settler
                .snapshot()
                .iter()
                .all(|u| u.due_at.is_some_and(|at| at > now))
    }

    /// Claims an idempotency key for a request with `fingerprint`: waits while another
    /// request holds the key, then answers replay, conflict, or run (holding the key).
    pub async fn claim_idempotency_key(&self, key: String, fingerprint: [u8; 32]) -> Claim {
        let now = self.core.clock.now();
        self.core.idempotency.claim(key, fingerprint, now).await
    }

    /// Creates or updates a warehouse. Cancellation-safe like [`Engine::place_order`].
    pub async fn upsert_warehouse(
        &self,
        input: WarehouseInput,
        idem: Option<IdemSpec<Warehouse>>,
    ) -> Result<Warehouse, EngineError> {
        run_detached("warehouse", warehouses::upsert(self.core.clone(), input, idem)).await
    }

    pub fn warehouses(&self) -> Vec<Warehouse> {
        self.core.warehouses.read().values().cloned().collect()
    }

    pub fn warehouse(&self, id: &WarehouseId) -> Option<Warehouse> {
        self.core.warehouses.read().get(id).cloned()
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
        self.change_inventory(sku, warehouse_id, Change::Delta(delta), reason, idem)
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
        let reason = format!("count set to {on_hand}");
        self.change_inventory(sku, warehouse_id, Change::Set(on_hand), reason, idem)
            .await
    }

    async fn change_inventory(
        &self,
        sku: Sku,
        wh: WarehouseId,
        change: Change,
        reason: String,
        idem: Option<IdemSpec<PairView>>,
    ) -> Result<PairView, EngineError> {
        self.core.check_open()?;
        warehouses::require(&self.core, &wh, "warehouse_id")?;
        self.pairs.change(&sku, &wh, change, reason, idem).await
    }

    /// A SKU's counts in every warehouse that has held it.
    pub async fn inventory(&self, sku: &Sku) -> Result<SkuView, EngineError> {
        views::sku(&self.pairs, sku).await
    }

    /// A page of the stock catalogue (`views::pairs_page`): pairs in (sku, warehouse) order
    /// after `after`, matching `filter`, and the key to continue after (None at the end).
    pub async fn list_pairs(
        &self,
        filter: &PairFilter,
        after: Option<(Sku, WarehouseId)>,
        limit: usize,
    ) -> Result<(Vec<PairView>, Option<(Sku, WarehouseId)>), EngineError> {
        views::pairs_page(&self.pairs, filter, after, limit).await
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
        let placement = Placement {
            core: self.core.clone(),
            pairs: self.pairs.clone(),
            orders: self.orders.clone(),
        };
        // What can be refused without touching an actor is refused here, without a task.
        placement.precheck(&new)?;
        run_detached("placement", placement.place(new, idem)).await
    }

    /// Creates or changes a flash sale (`domain::sale`). Cancellation-safe like
    /// [`Engine::place_order`].
    pub async fn upsert_sale(&self, input: SaleInput, idem: Option<IdemSpec<Sale>>) -> Result<Sale, EngineError> {
        run_detached("sale", sales::upsert(self.core.clone(), input, idem)).await
    }

    /// A sale with its live figures.
    pub fn sale(&self, id: &SaleId) -> Option<SaleView> {
        sales::view(&self.core, &self.pairs, id)
    }

    /// Every sale's id, ascending.
    pub fn sale_ids(&self) -> Vec<SaleId> {
        sales::ids(&self.core)
    }

    pub async fn order(&self, id: OrderId) -> Result<Arc<Order>, EngineError> {
        self.orders.get(id).await
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
        let filter = OrderFilter {
            user: user.cloned(),
            status,
            ..Default::default()
        };
        self.search_orders(&filter, cursor, limit).await
    }

    /// Orders matching `filter`, newest first, strictly older than `cursor`: the page and the
    /// cursor of the next page (None at the end). What each filter costs: `feed/indexes.rs`.
    pub async fn search_orders(
        &self,
        filter: &OrderFilter,
        cursor: Option<OrderId>,
        limit: usize,
    ) -> Result<(Vec<Arc<Order>>, Option<OrderId>), EngineError> {
        views::orders(&self.core, &self.orders, filter, cursor, limit).await
    }

    /// Runs a lifecycle request on an order.
    pub async fn order_request(
        &self,
        id: OrderId,
        request: OrderRequest,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        self.orders.request(id, request, idem).await
    }

    /// A receiver of every record made durable from now on, and the last LSN before it.
    pub fn subscribe(&self) -> (Subscription, u64) {
        self.core.feed.subscribe()
    }

    /// The (on_hand, reserved) of `pairs` in the fold of `domain::stock_changes` as of the
    /// newest published record, and its LSN: where a stream replaying history computes its
    /// figures back from.
    pub fn stock_figures_of(&self, pairs: &[(Sku, WarehouseId)]) -> (u64, Vec<(u64, u64)>) {
        self.core.feed.figures_of(pairs)
    }

    /// Opens the durable log subscriber `name` at its stored position; one that has none is
    /// registered at `start_after` (the last LSN it does not want: 0 for the whole log). See
    /// `subscriber.rs` for the protocol.
    pub async fn subscriber(&self, name: &str, start_after: u64) -> Result<LogSubscriber, SubscriberError> {
        LogSubscriber::open(self.core.clone(), name, start_after).await
    }

    /// Forgets the subscriber `name` and its position (the log stops keeping records for it).
    /// False if there was none; `InUse` while it is open.
    pub async fn remove_subscriber(&self, name: &str) -> Result<bool, SubscriberError> {
        let (core, name) = (self.core.clone(), name.to_string());
        tokio::task::spawn_blocking(move || core.subscribers.remove(&name))
            .await
            .map_err(|_| SubscriberError::Closed)?
    }

    /// Every registered subscriber's position and lag.
    pub fn subscribers(&self) -> Vec<SubscriberInfo> {
        subscriber::infos(&self.core)
    }

    /// The highest LSN published to subscribers (0 if none): how far a reader of the log can
    /// be, to measure its lag.
    pub fn published_lsn(&self) -> u64 {
        self.core.feed.published_lsn()
    }

    /// Waits until every record up to `lsn` is published (false if the engine closed first).
    pub async fn published_up_to(&self, lsn: u64) -> bool {
        self.core.feed.published_up_to(lsn).await
    }

    /// Leave to replay history from the log for an event stream, or `Busy` when
    /// `stream_replays_max` streams are replaying already. Hold it while reading history.
    pub fn replay_permit(&self) -> Result<ReplayPermit, EngineError> {
        let max = self.core.config.stream_replays_max;
        self.core
            .feed
            .try_replay()
            .ok_or_else(|| Busy::StreamReplays { max }.into())
    }

    /// Durable records from `from` (inclusive) up to `to` (inclusive), read from the log.
    /// Records older than the log's retained start are gone (covered by a snapshot); the first
    /// LSN still readable is returned with them.
    pub fn read_log(&self, from: u64, to: u64, max: usize) -> Result<(u64, Vec<Committed>), EngineError> {
        views::log(&self.core, from, to, max)
    }

    /// True while the log accepts writes.
    pub fn writable(&self) -> bool {
        self.core.check_open().is_ok()
    }

    pub fn stats(&self) -> EngineStats {
        views::stats(&self.core, &self.pairs, &self.orders)
    }

    /// Gathers the live state from every actor: what the actors hold, for comparison with a
    /// replay of the log (tests) and for the snapshot format.
    pub async fn export_state(&self) -> Result<EngineState, EngineError> {
        views::live_state(&self.core, &self.pairs, &self.orders).await
    }

    /// Replays the whole retained log (from the newest snapshot) into a fresh state: what
    /// recovery would build now.
    pub fn replay_state(&self) -> Result<EngineState, EngineError> {
        replay::fold_log(&self.core.wal, self.core.config.idempotency)
            .map(|(s, _)| s)
            .map_err(EngineError::Open)
    }

    /// The newest snapshot's state (the empty state if there is none), without the log after
    /// it: where a projection of the log starts (blocking; use from `spawn_blocking`).
    pub fn snapshot_state(&self) -> Result<EngineState, EngineError> {
        replay::snapshot_state(&self.core.wal).map_err(EngineError::Open)
    }

    /// Takes a snapshot now (blocking the calling task's thread; use from `spawn_blocking`).
    pub fn snapshot_now(&self) -> Result<u64, EngineError> {
        snapshot::take(&self.core)
    }

    /// Stops accepting mutations, flushes the log and closes it.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.core.closed.store(true, Ordering::Release);
        self.core.feed.close();
        self.core.expiry.wake();
        self.core.settler.wake();
        let wal = self.core.wal.clone();
        let closed = tokio::task::spawn_blocking(move || wal.close())
            .await
            .map_err(|e| Unavailable::task("log close", &e))?;
        Ok(closed?)
    }
}
