//! The core every actor, background task and the handle share: the log shell (the only path
//! to the log, [`Core::append`], and [`Durable`]), the feed, the idempotency table, the
//! warehouse registry, the queues the background tasks work from, the counters, and the one
//! way to put a message into a bounded mailbox ([`Core::send`]).
//!
//! Architecture invariant: the core names no actor. The registries of pairs (`pairs.rs`) and
//! orders (`orders.rs`) sit above it and hold it, so the dependencies between the engine's
//! files go one way: core, then pairs, then orders, then what drives them (placement, expiry,
//! the settler, the views), then recovery and the handle.

use super::clock::Clock;
use super::config::EngineConfig;
use super::error::{EngineError, Unavailable};
use super::expiry::queue::Expiry;
use super::feed::Feed;
use super::gateway::PaymentGateway;
use super::idempotency::Idempotency;
use super::sales::registry::SaleRegistry;
use super::settler::queue::SettleQueue;
use super::subscriber::registry::Subscribers;
use crate::codec;
use crate::domain::{Order, Record, Warehouse, WarehouseId};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Shared by every actor, background task and the handle.
pub(crate) struct Core {
    pub(crate) config: EngineConfig,
    pub(crate) wal: wal::Wal,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) feed: Feed,
    /// A std-style lock (parking_lot): held only for lookups and inserts, never across an await.
    pub(crate) warehouses: RwLock<BTreeMap<WarehouseId, Warehouse>>,
    /// Serializes warehouse upserts (rare) so created_at/updated_at are decided on fresh state.
    pub(crate) warehouse_write: tokio::sync::Mutex<()>,
    /// Stored idempotent responses and the keys of requests in flight.
    pub(crate) idempotency: Arc<Idempotency>,
    pub(crate) next_order_seq: AtomicU64,
    /// Reservations to expire, for the expiry task.
    pub(crate) expiry: Expiry,
    /// Orders whose payment or refund outcome is unknown, for the background settler. Shared
    /// (`Arc`) so the settler's loop can wait on it without keeping the core alive.
    pub(crate) settler: Arc<SettleQueue>,
    /// Durable log subscribers: their stored positions pin the log (snapshots keep what they
    /// still need, within a bound).
    pub(crate) subscribers: Subscribers,
    pub(crate) counters: Counters,
    /// Every flash-sale decision's state (a leaf: `sales/registry.rs`). Shared (`Arc`) so a
    /// placement's held allowance can give itself back when dropped.
    pub(crate) sales: Arc<SaleRegistry>,
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

impl Core {
    /// Appends `record`, waits until it is durable and records its idempotent response. The
    /// only way anything reaches the log. The record is published to the feed when the
    /// returned [`Durable`] is dropped: callers apply the change first, so an event is never
    /// seen before the state it describes can be read.
    pub(crate) async fn append(self: &Arc<Self>, record: Record) -> Result<Durable, EngineError> {
        let encoded = codec::encode_record(&record);
        let bytes = encoded.len();
        let ticket = self.wal.append(encoded);
        let lsn = ticket.await?;
        let record = Arc::new(record);
        if let Some(idem) = &record.idempotency {
            self.idempotency.record(idem);
        }
        Ok(Durable {
            core: self.clone(),
            lsn,
            bytes,
            record: Some(record),
            updated: None,
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

    /// `Ok` while the engine may acknowledge changes: not shutting down, no actor crashed,
    /// the log writable.
    pub(crate) fn check_open(&self) -> Result<(), EngineError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Unavailable::ShuttingDown.into());
        }
        let dead = self.dead_actors.load(Ordering::Relaxed);
        if dead > 0 {
            return Err(Unavailable::ActorsCrashed(dead).into());
        }
        if let Some(why) = self.wal.poisoned() {
            return Err(wal::WalError::Poisoned(why).into());
        }
        Ok(())
    }
}

/// Runs `work` in a task of its own and waits for it. A caller that goes away (an HTTP client
/// disconnecting) drops only the wait, never the work: a placement or an upsert cannot be
/// stopped between its append and what must follow it.
pub(crate) async fn run_detached<T: Send + 'static>(
    what: &'static str,
    work: impl Future<Output = Result<T, EngineError>> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::spawn(work).await.map_err(|e| Unavailable::task(what, &e))?
}

/// A durable record waiting to be published; dropping it publishes it, on every path (early
/// returns included), because a durable record the feed never sees would stall the feed.
pub(crate) struct Durable {
    core: Arc<Core>,
    lsn: u64,
    /// Encoded size, what the feed's byte bound counts.
    bytes: usize,
    record: Option<Arc<Record>>,
    /// The order an `OrderUpdated` record left, from which the feed computes the record's
    /// stock changes (`domain::stock_changes`).
    updated: Option<Arc<Order>>,
}

impl Durable {
    /// Names the order this (`OrderUpdated`) record left.
    pub(crate) fn updated(mut self, order: Arc<Order>) -> Durable {
        self.updated = Some(order);
        self
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.core
                .feed
                .publish(self.lsn, record, self.bytes, self.updated.take());
        }
    }
}

/// Why a message did not go into a mailbox.
pub(crate) enum SendFail<M> {
    /// The receiver is closed or gone (the actor is passivating or ended); the message is
    /// handed back to be sent again through the cell.
    Closed(M),
    /// The mailbox stayed full for `mailbox_wait_ms`.
    Busy,
}
