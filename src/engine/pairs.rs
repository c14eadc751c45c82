//! The SKU-warehouse actor: owns one pair's [`Inventory`], decides adjustments and tentative
//! holds, applies durable effects.
//!
//! Holds (placements in flight) and adjustments not yet durable are *pending decrements*: every
//! decision subtracts them from `available`, so whatever order those records reach the log in,
//! every prefix of the log keeps `on_hand >= reserved` (proof sketch in ARCHITECTURE.md).
//! Increases (releases, restocks, positive adjustments) are applied only once durable, so a
//! decision that relies on them always has a larger LSN than they do.

use super::cell::Cell;
use super::{Core, EngineError, IdemSpec, PairView};
use crate::domain::inventory::InventoryRejection;
use crate::domain::{Entry, Inventory, InventoryEffect, OrderId, Record, Rejection, ShortLine, Sku, WarehouseId};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub(crate) enum Change {
    Delta(i64),
    Set(u64),
}

pub(crate) struct ChangeRequest {
    pub(crate) change: Change,
    pub(crate) reason: String,
    pub(crate) idem: Option<IdemSpec<PairView>>,
    pub(crate) reply: oneshot::Sender<Result<PairView, EngineError>>,
}

pub(crate) enum PairMsg {
    /// Tentatively hold `quantity` for a placement in flight; replies whether it was held.
    Hold {
        order: OrderId,
        quantity: u64,
        reply: oneshot::Sender<bool>,
    },
    /// The placement failed: forget the hold.
    ReleaseHold {
        order: OrderId,
    },
    /// The placement is durable: the hold becomes a reservation.
    CommitHold {
        order: OrderId,
    },
    /// A durable effect of an order record (release, commit, restock).
    Apply {
        effect: InventoryEffect,
    },
    /// An adjustment or count. Boxed: it is the largest message and the rarest on a hot pair,
    /// and every mailbox slot is as large as the largest message.
    Change(Box<ChangeRequest>),
    Read {
        reply: oneshot::Sender<Inventory>,
    },
}

/// A pair's identity, its cell, and a lock-free hint of what it can still give (used by
/// placement to plan; the actor's answer to `Hold` is what counts).
pub(crate) struct Pair {
    pub(crate) sku: Sku,
    pub(crate) warehouse_id: WarehouseId,
    available_hint: AtomicU64,
    cell: Cell<Inventory, PairMsg>,
}

impl Pair {
    pub(crate) fn new(sku: Sku, warehouse_id: WarehouseId, inv: Inventory) -> Pair {
        Pair {
            sku,
            warehouse_id,
            available_hint: AtomicU64::new(inv.available()),
            cell: Cell::idle(inv),
        }
    }

    pub(crate) fn available_hint(&self) -> u64 {
        self.available_hint.load(Ordering::Relaxed)
    }

    pub(crate) fn sender(self: &Arc<Self>, core: &Arc<Core>) -> mpsc::Sender<PairMsg> {
        self.cell.sender(core.config.mailbox_capacity, |inv, rx| {
            core.counters.pair_actors_active.fetch_add(1, Ordering::Relaxed);
            let actor = PairActor {
                core: core.clone(),
                pair: self.clone(),
                inv,
                holds: HashMap::new(),
                held_total: 0,
                pending_dec: 0,
                in_flight_delta: 0,
            };
            tokio::spawn(actor.run(rx));
        })
    }

    fn view_of(&self, inv: &Inventory) -> PairView {
        PairView {
            sku: self.sku.clone(),
            warehouse_id: self.warehouse_id.clone(),
            on_hand: inv.on_hand(),
            reserved: inv.reserved(),
            available: inv.available(),
        }
    }

    /// The pair's durable counts.
    pub(crate) async fn view(self: &Arc<Self>, core: &Arc<Core>) -> Result<PairView, EngineError> {
        let inv = self.inventory(core).await?;
        Ok(self.view_of(&inv))
    }

    pub(crate) async fn inventory(self: &Arc<Self>, core: &Arc<Core>) -> Result<Inventory, EngineError> {
        if let Some(inv) = self.cell.read_idle(|inv| inv.clone()) {
            return Ok(inv);
        }
        let (reply, rx) = oneshot::channel();
        core.to_pair(self, PairMsg::Read { reply }).await?;
        rx.await
            .map_err(|_| EngineError::Unavailable("inventory actor ended".into()))
    }
}

type Landing = (
    Result<super::Durable, EngineError>,
    InventoryEffect,
    oneshot::Sender<Result<PairView, EngineError>>,
);

struct PairActor {
    core: Arc<Core>,
    pair: Arc<Pair>,
    inv: Inventory,
    holds: HashMap<OrderId, u64>,
    held_total: u64,
    /// Decrements of adjustments appended but not yet durable.
    pending_dec: u64,
    /// Sum of the deltas of adjustments appended but not yet durable (a count is set relative
    /// to on_hand as it will be once they land).
    in_flight_delta: i64,
}

impl PairActor {
    fn pending(&self) -> u64 {
        self.held_total + self.pending_dec
    }

    fn publish_hint(&self) {
        self.pair
            .available_hint
            .store(self.inv.available().saturating_sub(self.pending()), Ordering::Relaxed);
    }

    async fn run(mut self, mut rx: mpsc::Receiver<PairMsg>) {
        let batch_max = self.core.config.batch_max;
        let idle = Duration::from_millis(self.core.config.passivate_after_ms);
        // Grows only as large as the batches this pair actually gets: most pairs see one or two
        // messages at a time, and a buffer sized for `batch_max` would cost kilobytes per
        // active pair.
        let mut buf = Vec::new();
        let mut landing: FuturesOrdered<futures::future::BoxFuture<'static, Landing>> = FuturesOrdered::new();
        loop {
            if landing.is_empty() {
                let got = if self.holds.is_empty() {
                    tokio::time::timeout(idle, rx.recv_many(&mut buf, batch_max)).await
                } else {
                    Ok(rx.recv_many(&mut buf, batch_max).await)
                };
                match got {
                    Err(_) => match self.pair.cell.passivate(self.inv, &rx) {
                        Ok(()) => break,
                        Err(inv) => self.inv = inv,
                    },
                    Ok(0) => {
                        self.pair.cell.store(self.inv);
                        break;
                    }
                    Ok(_) => {}
                }
            } else {
                tokio::select! {
                    biased;
                    Some(done) = landing.next() => { self.land(done); continue; }
                    n = rx.recv_many(&mut buf, batch_max) => {
                        if n == 0 {
                            while let Some(done) = landing.next().await { self.land(done); }
                            self.pair.cell.store(self.inv);
                            break;
                        }
                    }
                }
            }
            for msg in buf.drain(..) {
                self.handle(msg, &mut landing);
            }
            self.publish_hint();
        }
        self.core.counters.pair_actors_active.fetch_sub(1, Ordering::Relaxed);
    }

    fn handle(&mut self, msg: PairMsg, landing: &mut FuturesOrdered<futures::future::BoxFuture<'static, Landing>>) {
        match msg {
            PairMsg::Hold { order, quantity, reply } => {
                let ok = self.inv.decide_hold(quantity, self.pending()).is_ok();
                if ok {
                    *self.holds.entry(order).or_insert(0) += quantity;
                    self.held_total += quantity;
                }
                let _ = reply.send(ok);
            }
            PairMsg::ReleaseHold { order } => {
                if let Some(q) = self.holds.remove(&order) {
                    self.held_total -= q;
                }
            }
            PairMsg::CommitHold { order } => {
                let quantity = self
                    .holds
                    .remove(&order)
                    .expect("commit of a hold that was never taken");
                self.held_total -= quantity;
                self.inv.apply(&InventoryEffect::Reserved { order, quantity });
            }
            PairMsg::Apply { effect } => self.inv.apply(&effect),
            PairMsg::Read { reply } => {
                let _ = reply.send(self.inv.clone());
            }
            PairMsg::Change(request) => {
                let ChangeRequest {
                    change,
                    reason,
                    idem,
                    reply,
                } = *request;
                let pending = self.pending();
                // The field the client sent, to name in a rejection.
                let (decided, field) = match change {
                    Change::Delta(d) => (self.inv.decide_adjust(d, pending), "delta"),
                    Change::Set(n) => (self.inv.decide_set(n, pending, self.in_flight_delta), "on_hand"),
                };
                let effect = match decided {
                    Ok(e) => e,
                    Err(r) => {
                        let _ = reply.send(Err(self.rejection(r, field)));
                        return;
                    }
                };
                let InventoryEffect::Adjusted { delta } = effect else {
                    unreachable!("adjustments decide Adjusted")
                };
                let now = self.core.clock.now();
                let idempotency = idem.map(|i| {
                    let mut next = self.inv.clone();
                    next.apply(&effect);
                    i.record(&self.pair.view_of(&next), now)
                });
                let record = Record {
                    entry: Entry::InventoryAdjusted {
                        sku: self.pair.sku.clone(),
                        warehouse_id: self.pair.warehouse_id.clone(),
                        delta,
                        reason,
                        at: now,
                    },
                    idempotency,
                };
                self.pending_dec += effect.decrement();
                self.in_flight_delta += delta;
                let core = self.core.clone();
                landing.push_back(Box::pin(async move { (core.append(record).await, effect, reply) }));
            }
        }
    }

    fn land(&mut self, (result, effect, reply): Landing) {
        self.pending_dec -= effect.decrement();
        if let InventoryEffect::Adjusted { delta } = effect {
            self.in_flight_delta -= delta;
        }
        let answer = result.map(|durable| {
            self.inv.apply(&effect);
            // Published (by dropping `durable`) once the pair shows the change.
            drop(durable);
            self.pair.view_of(&self.inv)
        });
        self.publish_hint();
        let _ = reply.send(answer);
    }

    fn rejection(&self, r: InventoryRejection, field: &'static str) -> EngineError {
        change_rejection(&self.pair.sku, r, field)
    }
}

/// The answer to an adjustment or count of `sku` that was refused; `field` is the one the
/// client sent (`delta` for an adjustment, `on_hand` for a count).
pub(crate) fn change_rejection(sku: &Sku, r: InventoryRejection, field: &'static str) -> EngineError {
    match r {
        InventoryRejection::Insufficient { requested, available } => Rejection::InsufficientStock(vec![ShortLine {
            sku: sku.clone(),
            requested,
            available,
        }])
        .into(),
        InventoryRejection::OutOfRange => Rejection::Validation(vec![crate::domain::FieldError::new(
            field,
            "would take the count beyond 10^12 units",
        )])
        .into(),
    }
}
