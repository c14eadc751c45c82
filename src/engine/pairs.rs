//! The SKU-warehouse actor: routes one pair's messages to its [`PairLedger`] (the inventory
//! plus the holds and adjustments in flight, where every anti-oversell number lives), appends
//! adjustments, and applies durable effects.
//!
//! Holds (placements in flight) and adjustments not yet durable are *pending decrements*: every
//! decision subtracts them from `available`, so whatever order those records reach the log in,
//! every prefix of the log keeps `on_hand >= reserved` (proof sketch in ARCHITECTURE.md).
//! Increases (releases, restocks, positive adjustments) are applied only once durable, so a
//! decision that relies on them always has a larger LSN than they do.

use super::cell::{self, ActorDead, Cell, HasCell, Mailbox};
use super::{Core, EngineError, IdemSpec, PairView};
use crate::domain::inventory::{InventoryRejection, ON_HAND_MAX};
use crate::domain::{
    Entry, Inventory, InventoryEffect, OrderId, PairLedger, Record, Rejection, ShortLine, Sku, WarehouseId,
};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
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
    /// Tentatively hold `quantity` for a placement in flight, replacing any hold the order
    /// has here (a re-plan holds again); replies whether it was held. A refused hold leaves
    /// none. Every granted hold is followed by exactly one `ReleaseHold` or `CommitHold`.
    Hold {
        order: OrderId,
        quantity: u64,
        reply: oneshot::Sender<bool>,
    },
    /// The placement failed: forget the hold. Delivered however full the mailbox is
    /// ([`Core::deliver_to_pair`]): a lost release would hold the stock forever.
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

impl HasCell for Pair {
    type State = Inventory;
    type Msg = PairMsg;
    fn cell(&self) -> &Cell<Inventory, PairMsg> {
        &self.cell
    }
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

    pub(crate) fn sender(self: &Arc<Self>, core: &Arc<Core>) -> Result<mpsc::Sender<PairMsg>, ActorDead> {
        cell::sender(self, core.config.mailbox_capacity, &core.dead_actors, |inv, mailbox| {
            core.counters.pair_actors_active.fetch_add(1, Ordering::Relaxed);
            let actor = PairActor {
                core: core.clone(),
                pair: self.clone(),
                ledger: PairLedger::new(inv),
            };
            tokio::spawn(actor.run(mailbox));
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
    ledger: PairLedger,
}

type Landings = FuturesOrdered<futures::future::BoxFuture<'static, Landing>>;

impl PairActor {
    fn publish_hint(&self) {
        self.pair.available_hint.store(self.ledger.free(), Ordering::Relaxed);
    }

    async fn run(mut self, mut mailbox: Mailbox<Pair>) {
        let batch_max = self.core.config.batch_max;
        let idle = Duration::from_millis(self.core.config.passivate_after_ms);
        // Grows only as large as the batches this pair actually gets: most pairs see one or two
        // messages at a time, and a buffer sized for `batch_max` would cost kilobytes per
        // active pair.
        let mut buf = Vec::new();
        let mut landing: Landings = FuturesOrdered::new();
        loop {
            if landing.is_empty() {
                // Only a settled pair (no hold, nothing in flight) may end; one with a hold waits
                // for its CommitHold or ReleaseHold, which always comes.
                let got = if self.ledger.is_settled() {
                    tokio::time::timeout(idle, mailbox.recv_many(&mut buf, batch_max)).await
                } else {
                    Ok(mailbox.recv_many(&mut buf, batch_max).await)
                };
                match got {
                    Err(_) => match mailbox.passivate(self.ledger.into_inventory()) {
                        Ok(()) => break,
                        Err(inv) => self.ledger = PairLedger::new(inv),
                    },
                    Ok(0) => {
                        // Every sender is gone (the engine is being dropped): no release or
                        // commit can come any more, so the durable counts are all there is.
                        mailbox.store(self.ledger.inventory().clone());
                        break;
                    }
                    Ok(_) => {}
                }
            } else {
                tokio::select! {
                    biased;
                    Some(done) = landing.next() => { self.land(done); continue; }
                    n = mailbox.recv_many(&mut buf, batch_max) => {
                        if n == 0 {
                            while let Some(done) = landing.next().await { self.land(done); }
                            mailbox.store(self.ledger.inventory().clone());
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

    fn handle(&mut self, msg: PairMsg, landing: &mut Landings) {
        match msg {
            PairMsg::Hold { order, quantity, reply } => {
                let _ = reply.send(self.ledger.hold(order, quantity).is_ok());
            }
            PairMsg::ReleaseHold { order } => {
                self.ledger.release_hold(order);
            }
            PairMsg::CommitHold { order } => {
                self.ledger.commit_hold(order);
            }
            PairMsg::Apply { effect } => self.ledger.apply_order_effect(&effect),
            PairMsg::Read { reply } => {
                let _ = reply.send(self.ledger.inventory().clone());
            }
            PairMsg::Change(request) => self.change(*request, landing),
        }
    }

    /// Decides an adjustment or count, appends it, and lands it when the append finishes.
    fn change(&mut self, request: ChangeRequest, landing: &mut Landings) {
        let ChangeRequest {
            change,
            reason,
            idem,
            reply,
        } = request;
        // The field the client sent, to name in a rejection.
        let (decided, field) = match change {
            Change::Delta(d) => (self.ledger.decide_adjust(d), "delta"),
            Change::Set(n) => (self.ledger.decide_set(n), "on_hand"),
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
            let mut next = self.ledger.inventory().clone();
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
        self.ledger.adjustment_appended(&effect);
        let core = self.core.clone();
        landing.push_back(Box::pin(async move { (core.append(record).await, effect, reply) }));
    }

    fn land(&mut self, (result, effect, reply): Landing) {
        self.ledger.adjustment_landed(&effect, result.is_ok());
        let answer = result.map(|durable| {
            // Published (by dropping `durable`) once the pair shows the change.
            drop(durable);
            self.pair.view_of(self.ledger.inventory())
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
            format!("would take the count beyond 10^{} units", ON_HAND_MAX.ilog10()),
        )])
        .into(),
    }
}
