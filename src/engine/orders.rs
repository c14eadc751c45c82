//! The order actor: owns one [`Order`], turns lifecycle requests into commands, decides them,
//! logs the events, applies them and tells the pairs what stock moved.
//!
//! Payments and refunds follow the payment-outcome protocol (ARCHITECTURE.md), implemented in
//! the child module `payment`: the intent is durable before the gateway is called, an outcome
//! the gateway did not tell stays `pending` until a lookup settles it, and nothing is charged
//! or refunded twice. Gateway calls run in this actor's task, so a slow gateway delays only
//! this order.

mod payment;

use super::cell::{self, ActorDead, Cell, HasCell, Mailbox};
use super::core::{Core, SendFail};
use super::error::{Actor, Busy, EngineError, Unavailable};
use super::idempotency::IdemSpec;
use super::pairs::{PairMsg, Pairs};
use super::settler::queue::SETTLE_DELAY_MS_MIN;
use super::warehouses;
use crate::domain::order::{LineQty, OrderEdit};
use crate::domain::sale::units_cancelled;
use crate::domain::{
    Entry, FastMap, IdempotencyRecord, Millis, Order, OrderCommand, OrderEvent, OrderId, OrderStatus, Record,
    Rejection, WarehouseId, apply_order_events,
};
use parking_lot::RwLock;
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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
    /// Refund return `return_id` by its value (what its units are worth, less what was refunded
    /// for it), at most what is refundable.
    RefundReturn {
        return_id: String,
        reason: String,
    },
    /// Cancel some open units (reserved, in no shipment): their stock is released and what of
    /// their value was captured is refunded.
    CancelItems {
        items: Vec<LineQty>,
        reason: String,
    },
    /// Shipments for some open units.
    FulfillItems {
        items: Vec<LineQty>,
    },
    /// Note, tags, metadata, shipping address; `actor` names who asked (for the history).
    Edit {
        /// Boxed: the largest command by far, and rare.
        edit: Box<OrderEdit>,
        actor: String,
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

/// A refund as the client asked for it.
struct RefundAsk {
    amount: Decimal,
    /// The return refunded, as the client named it (`RET-…`).
    return_id: Option<String>,
    reason: String,
}

/// Order cells are sharded by number, to spread lock traffic.
const SHARDS: usize = 64;

/// Every order's cell, by number, and the way to reach each one's actor.
pub(crate) struct Orders {
    core: Arc<Core>,
    /// What an order actor tells of the stock its events move.
    pairs: Arc<Pairs>,
    /// A std-style lock per shard: held only for lookups and inserts, never across an await.
    shards: Vec<RwLock<FastMap<OrderId, Arc<OrderCell>>>>,
}

impl Orders {
    /// The orders of a recovered state, every one idle. Recovery's own allocations become the
    /// cells: no order is copied.
    pub(crate) fn new(core: Arc<Core>, pairs: Arc<Pairs>, orders: impl IntoIterator<Item = Arc<Order>>) -> Orders {
        let mut shards: Vec<FastMap<_, _>> = (0..SHARDS).map(|_| Default::default()).collect();
        for order in orders {
            let id = order.id;
            shards[Self::shard_of(id)].insert(id, Arc::new(OrderCell::new(order)));
        }
        Orders {
            core,
            pairs,
            shards: shards.into_iter().map(RwLock::new).collect(),
        }
    }

    fn shard_of(id: OrderId) -> usize {
        (id.0 as usize) % SHARDS
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    pub(crate) fn cell(&self, id: OrderId) -> Option<Arc<OrderCell>> {
        self.shards[Self::shard_of(id)].read().get(&id).cloned()
    }

    /// Registers a newly placed order (its actor idle).
    pub(crate) fn insert(&self, order: Arc<Order>) {
        let id = order.id;
        let cell = Arc::new(OrderCell::new(order));
        self.shards[Self::shard_of(id)].write().insert(id, cell);
    }

    pub(crate) fn cells(&self) -> Vec<Arc<OrderCell>> {
        self.shards
            .iter()
            .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    fn sender(&self, cell: &Arc<OrderCell>) -> Result<mpsc::Sender<OrderMsg>, ActorDead> {
        let capacity = self.core.config.mailbox_capacity.min(256);
        cell::sender(cell, capacity, &self.core.dead_actors, |order, mailbox| {
            self.core.counters.order_actors_active.fetch_add(1, Ordering::Relaxed);
            let actor = OrderActor {
                core: self.core.clone(),
                pairs: self.pairs.clone(),
                order,
            };
            tokio::spawn(actor.run(mailbox));
        })
    }

    /// Sends an order message, activating the order's actor as needed.
    pub(crate) async fn send(&self, cell: &Arc<OrderCell>, mut msg: OrderMsg) -> Result<(), EngineError> {
        loop {
            let tx = self
                .sender(cell)
                .map_err(|_| Unavailable::ActorDead(Actor::Order(cell.id)))?;
            match self.core.send(&tx, msg).await {
                Ok(()) => return Ok(()),
                Err(SendFail::Closed(m)) => msg = m,
                Err(SendFail::Busy) => return Err(Busy::Mailbox(Actor::Order(cell.id)).into()),
            }
        }
    }

    /// The order as it is now.
    pub(crate) async fn read(&self, cell: &Arc<OrderCell>) -> Result<Arc<Order>, EngineError> {
        if let Some(o) = cell.cell.read_idle(|o| o.clone()) {
            return Ok(o);
        }
        let (reply, rx) = oneshot::channel();
        self.send(cell, OrderMsg::Read { reply }).await?;
        rx.await
            .map_err(|_| Unavailable::NoAnswer(Actor::Order(cell.id)).into())
    }

    /// Order `id`, or "not found".
    pub(crate) async fn get(&self, id: OrderId) -> Result<Arc<Order>, EngineError> {
        let cell = self
            .cell(id)
            .ok_or_else(|| Rejection::NotFound(format!("order {id}")))?;
        self.read(&cell).await
    }

    /// Runs a client's lifecycle request on order `id`.
    pub(crate) async fn request(
        &self,
        id: OrderId,
        request: OrderRequest,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        self.core.check_open()?;
        if let OrderRequest::ReceiveReturn { warehouse_id, .. } = &request {
            warehouses::require(&self.core, warehouse_id, "warehouse_id")?;
        }
        let cell = self
            .cell(id)
            .ok_or_else(|| Rejection::NotFound(format!("order {id}")))?;
        self.ask(&cell, Internal::Client(request), idem).await
    }

    /// Asks order `id` to expire or settle (the engine's own requests); `None` if there is no
    /// such order.
    pub(crate) async fn internal(&self, id: OrderId, request: Internal) -> Option<Result<OrderOutcome, EngineError>> {
        let cell = self.cell(id)?;
        Some(self.ask(&cell, request, None).await)
    }

    async fn ask(
        &self,
        cell: &Arc<OrderCell>,
        request: Internal,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(cell, OrderMsg::Request { request, idem, reply }).await?;
        rx.await.map_err(|_| Unavailable::NoAnswer(Actor::Order(cell.id)))?
    }
}

pub(crate) struct OrderCell {
    pub(crate) id: OrderId,
    /// The order is shared (`Arc`) with replies, reads and the log record that placed it;
    /// the actor copies it on write (`commit` builds the next version from a clone anyway).
    cell: Cell<Arc<Order>, OrderMsg>,
}

impl HasCell for OrderCell {
    type State = Arc<Order>;
    type Msg = OrderMsg;
    fn cell(&self) -> &Cell<Arc<Order>, OrderMsg> {
        &self.cell
    }
}

impl OrderCell {
    pub(crate) fn new(order: Arc<Order>) -> OrderCell {
        OrderCell {
            id: order.id,
            cell: Cell::idle(order),
        }
    }

    /// Reads the order if its actor is not running.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&Order) -> R) -> Option<R> {
        self.cell.read_idle(|o| f(o))
    }
}

/// Requests from outside the order (clients) and from the engine itself.
pub(crate) enum Internal {
    Client(OrderRequest),
    /// The reservation's time has come (sent by the expiry task). Answered `Ok` when the order
    /// expired or expiry no longer applies (paid, cancelled), and with an error when expiry
    /// must be tried again later (a payment outcome still unknown, not due yet, the log).
    Expire,
    /// Settle a payment or refund whose outcome is unknown (sent by the settler). `Ok` when
    /// nothing is left pending.
    Resolve,
}

pub(crate) enum OrderMsg {
    Read {
        reply: oneshot::Sender<Arc<Order>>,
    },
    Request {
        request: Internal,
        idem: Option<IdemSpec<OrderOutcome>>,
        reply: oneshot::Sender<Result<OrderOutcome, EngineError>>,
    },
}

struct OrderActor {
    core: Arc<Core>,
    pairs: Arc<Pairs>,
    order: Arc<Order>,
}

impl OrderActor {
    async fn run(mut self, mut mailbox: Mailbox<OrderCell>) {
        let batch_max = self.core.config.batch_max.min(64);
        let idle = Duration::from_millis(self.core.config.order_passivate_after_ms);
        // Grows only as needed: an order rarely has more than one request waiting.
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(idle, mailbox.recv_many(&mut buf, batch_max)).await {
                Err(_) => match mailbox.passivate(self.order) {
                    Ok(()) => break,
                    Err(order) => self.order = order,
                },
                Ok(0) => {
                    mailbox.store(self.order);
                    break;
                }
                Ok(_) => {
                    for msg in buf.drain(..) {
                        match msg {
                            OrderMsg::Read { reply } => {
                                let _ = reply.send(self.order.clone());
                            }
                            OrderMsg::Request { request, idem, reply } => {
                                let out = self.handle(request, idem).await;
                                if self.order.pending_attempt().is_some() || self.order.pending_refund().is_some() {
                                    // An outcome the gateway did not tell: the settler takes it
                                    // up if no retry comes first. Queued before the reply, so
                                    // whoever hears the reply can see it queued.
                                    let due = Millis(self.core.clock.now().0.saturating_add(SETTLE_DELAY_MS_MIN));
                                    self.core.settler.enqueue(self.order.id, due);
                                }
                                let _ = reply.send(out);
                            }
                        }
                    }
                }
            }
        }
        self.core.counters.order_actors_active.fetch_sub(1, Ordering::Relaxed);
    }

    async fn handle(
        &mut self,
        request: Internal,
        idem: Option<IdemSpec<OrderOutcome>>,
    ) -> Result<OrderOutcome, EngineError> {
        let request = match request {
            Internal::Expire => return self.expire().await,
            Internal::Resolve => return self.resolve().await,
            Internal::Client(request) => request,
        };
        // What the request creates, named in the answer (a return is numbered by its position).
        let mut created = None;
        let cmd = match request {
            OrderRequest::Pay { token } => return self.pay(token, idem).await,
            OrderRequest::Cancel { reason } => return self.cancel(reason, idem).await,
            OrderRequest::CancelItems { items, reason } => return self.cancel_items(items, reason, idem).await,
            OrderRequest::RefundReturn { return_id, reason } => {
                let idx = self.order.find_return(&return_id)?;
                let amount = self.order.return_value(idx).min(self.order.refundable());
                let ask = RefundAsk {
                    amount,
                    return_id: Some(return_id),
                    reason,
                };
                return self.refund(ask, idem).await;
            }
            OrderRequest::Refund {
                amount,
                return_id,
                reason,
            } => {
                let ask = RefundAsk {
                    amount,
                    return_id,
                    reason,
                };
                return self.refund(ask, idem).await;
            }
            OrderRequest::Fulfill => OrderCommand::StartFulfillment {
                carriers: self.carriers(),
                items: None,
            },
            OrderRequest::FulfillItems { items } => OrderCommand::StartFulfillment {
                carriers: self.carriers(),
                items: Some(items),
            },
            OrderRequest::Ship {
                shipment_id,
                carrier,
                tracking_number,
            } => OrderCommand::Ship {
                shipment_id,
                carrier,
                tracking_number,
            },
            OrderRequest::Deliver { shipment_id } => OrderCommand::Deliver { shipment_id },
            OrderRequest::RequestReturn { items, reason } => {
                created = Some(self.order.return_id(self.order.returns.len()));
                OrderCommand::RequestReturn { items, reason }
            }
            OrderRequest::ApproveReturn { return_id } => OrderCommand::ApproveReturn { return_id },
            OrderRequest::Edit { edit, actor } => OrderCommand::Edit { edit, actor },
            OrderRequest::RejectReturn { return_id, reason } => OrderCommand::RejectReturn { return_id, reason },
            OrderRequest::ReceiveReturn {
                return_id,
                warehouse_id,
                restock,
            } => OrderCommand::ReceiveReturn {
                return_id,
                warehouse_id,
                restock,
            },
        };
        let events = self.order.decide(&cmd, self.core.clock.now())?;
        self.commit(events, idem, created, None).await
    }

    fn carriers(&self) -> std::collections::BTreeMap<WarehouseId, String> {
        let whs = self.core.warehouses.read();
        self.order
            .items
            .iter()
            .flat_map(|i| i.allocations.iter())
            .map(|a| {
                let carrier = whs
                    .get(&a.warehouse_id)
                    .and_then(|w| w.carrier.clone())
                    .unwrap_or_else(|| self.core.config.default_carrier.clone());
                (a.warehouse_id.clone(), carrier)
            })
            .collect()
    }

    fn outcome(&self, created: Option<String>, declined: Option<String>) -> OrderOutcome {
        OrderOutcome {
            order: self.order.clone(),
            created,
            declined,
        }
    }

    /// Logs `events` (with the idempotent response, if any), then applies them and moves stock.
    async fn commit(
        &mut self,
        events: Vec<OrderEvent>,
        idem: Option<IdemSpec<OrderOutcome>>,
        created: Option<String>,
        declined: Option<String>,
    ) -> Result<OrderOutcome, EngineError> {
        let idempotency = |outcome: &OrderOutcome, now| idem.map(|i| i.record(outcome, now));
        self.commit_with(events, created, declined, idempotency).await
    }

    /// [`Self::commit`] with the record's idempotency slot filled by `idempotency` (a response,
    /// or the marker of an intent, see [`payment::Opened`]).
    async fn commit_with(
        &mut self,
        events: Vec<OrderEvent>,
        created: Option<String>,
        declined: Option<String>,
        idempotency: impl FnOnce(&OrderOutcome, Millis) -> Option<IdempotencyRecord>,
    ) -> Result<OrderOutcome, EngineError> {
        let mut next = (*self.order).clone();
        let (effects, changes) = apply_order_events(&mut next, &events);
        let outcome = OrderOutcome {
            order: Arc::new(next),
            created,
            declined,
        };
        let idempotency = idempotency(&outcome, self.core.clock.now());
        let cancelled_units = units_cancelled(&events);
        let record = Record {
            entry: Entry::OrderUpdated {
                order_id: self.order.id,
                events,
                changes,
            },
            idempotency,
        };
        // Published when `durable` drops, after the order and the pairs have the change.
        #[cfg(debug_assertions)]
        later_effects_agree(&outcome.order, &record, &effects);
        let durable = self.core.append(record).await?.updated(outcome.order.clone());
        let cancelled = outcome.order.status == OrderStatus::Cancelled && self.order.status != OrderStatus::Cancelled;
        self.order = outcome.order.clone();
        // Durable: units cancelled, or all of them if the order was, go back to the
        // customer's allowance in any sale of the order (as replay folds the record).
        self.core
            .sales
            .order_updated(self.order.id, &cancelled_units, cancelled);
        for (sku, wh, effect) in effects {
            let pair = self.pairs.get_or_create(&sku, &wh);
            // Durable already: the pair must hear of it, however long its mailbox is. Only a
            // dead pair refuses, and then the engine acknowledges nothing more anyway.
            self.pairs.deliver(&pair, PairMsg::Apply { effect }).await?;
        }
        drop(durable);
        Ok(outcome)
    }
}

/// The argument of `domain::stock_changes`: an update's stock changes computed from the order
/// it left are the ones computed, event by event, from the order before it.
#[cfg(debug_assertions)]
fn later_effects_agree(
    after: &Order,
    record: &Record,
    effects: &[(crate::domain::Sku, WarehouseId, crate::domain::InventoryEffect)],
) {
    use crate::domain::order::inventory_effects;
    let Entry::OrderUpdated { events, .. } = &record.entry else {
        return;
    };
    let later: Vec<_> = events.iter().flat_map(|ev| inventory_effects(after, ev)).collect();
    assert_eq!(
        later, effects,
        "stock changes computed from the order after an update differ"
    );
}
