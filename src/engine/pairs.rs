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
use super::core::{Core, Durable, SendFail};
use super::error::{Actor, Busy, EngineError, Unavailable};
use super::idempotency::IdemSpec;
use crate::domain::inventory::{InventoryRejection, ON_HAND_MAX};
use crate::domain::rejection::BelowReserved;
use crate::domain::{
    Entry, FastMap, FieldError, Inventory, InventoryEffect, OrderId, PairLedger, Record, Rejection, Sku, WarehouseId,
};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One pair's counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairView {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
}

/// Every pair, by key and by SKU, and the way to reach each one's actor.
pub(crate) struct Pairs {
    core: Arc<Core>,
    /// A std-style lock (parking_lot): held only for map lookups and inserts, never across an
    /// await.
    registry: RwLock<Registry>,
}

#[derive(Default)]
struct Registry {
    by_key: FastMap<(Sku, WarehouseId), Arc<Pair>>,
    by_sku: FastMap<Sku, Vec<Arc<Pair>>>,
    /// Every pair in (sku, warehouse) order, for the stock catalogue's pages (`range`). A
    /// second index costs a tree node per pair; pairs are created rarely, so keeping it in
    /// step is cheap, and a page is then a range read instead of a sort of every pair.
    ordered: std::collections::BTreeMap<(Sku, WarehouseId), Arc<Pair>>,
}

/// A scan of the pairs in (sku, warehouse) order (see [`Pairs::range`]).
pub(crate) struct PairScan {
    /// The pairs that passed the key filters.
    pub(crate) pairs: Vec<Arc<Pair>>,
    /// The key of the last pair looked at, matching or not: where the next scan starts.
    pub(crate) last: Option<(Sku, WarehouseId)>,
    /// True if no pair after `last` can match.
    pub(crate) done: bool,
}

impl Registry {
    fn find(&self, sku: &Sku, wh: &WarehouseId) -> Option<&Arc<Pair>> {
        self.by_sku.get(sku)?.iter().find(|p| p.warehouse_id == *wh)
    }
}

impl Pairs {
    /// The pairs of a recovered state, every one idle.
    pub(crate) fn new(core: Arc<Core>, inventory: impl IntoIterator<Item = ((Sku, WarehouseId), Inventory)>) -> Pairs {
        let mut registry = Registry::default();
        for ((sku, wh), inv) in inventory {
            let p = Arc::new(Pair::new(sku.clone(), wh.clone(), inv));
            registry.by_sku.entry(sku.clone()).or_default().push(p.clone());
            registry.ordered.insert((sku.clone(), wh.clone()), p.clone());
            registry.by_key.insert((sku, wh), p);
        }
        Pairs {
            core,
            registry: RwLock::new(registry),
        }
    }

    /// Found through the SKU's few pairs rather than `by_key`: a lookup by `(Sku, WarehouseId)`
    /// would clone both keys, two reference-count round trips on strings every placement of
    /// a hot SKU shares.
    pub(crate) fn get(&self, sku: &Sku, wh: &WarehouseId) -> Option<Arc<Pair>> {
        self.registry.read().find(sku, wh).cloned()
    }

    /// The pair for (sku, wh), created empty if it does not exist yet.
    pub(crate) fn get_or_create(&self, sku: &Sku, wh: &WarehouseId) -> Arc<Pair> {
        if let Some(p) = self.get(sku, wh) {
            return p;
        }
        let mut reg = self.registry.write();
        if let Some(p) = reg.find(sku, wh) {
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
            .core
            .warehouses
            .read()
            .get_key_value(wh)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| wh.clone());
        let p = Arc::new(Pair::new(sku.clone(), wh.clone(), Default::default()));
        reg.by_key.insert((sku.clone(), wh.clone()), p.clone());
        reg.ordered.insert((sku.clone(), wh), p.clone());
        reg.by_sku.entry(sku).or_default().push(p.clone());
        p
    }

    /// Looks at up to `scan_max` pairs after `after` (or from the first whose SKU starts with
    /// `prefix`), in (sku, warehouse) order, and returns those whose SKU starts with `prefix`
    /// and, if `wh` is given, that are at `wh`. Bounded work per call, however sparse the match.
    pub(crate) fn range(
        &self,
        after: Option<&(Sku, WarehouseId)>,
        prefix: Option<&Sku>,
        wh: Option<&WarehouseId>,
        scan_max: usize,
    ) -> PairScan {
        use std::ops::Bound;
        let reg = self.registry.read();
        // The smallest key of the prefix: its SKU with the smallest warehouse id there is
        // ("-" sorts before every other key character).
        let first = prefix.map(|p| (p.clone(), WarehouseId::parse("-").expect("\"-\" is a valid key")));
        let start = match (after, &first) {
            (Some(a), Some(f)) if a < f => Bound::Included(f.clone()),
            (Some(a), _) => Bound::Excluded(a.clone()),
            (None, Some(f)) => Bound::Included(f.clone()),
            (None, None) => Bound::Unbounded,
        };
        let mut scan = PairScan {
            pairs: Vec::new(),
            last: None,
            done: true,
        };
        for (scanned, (key, pair)) in reg.ordered.range((start, Bound::Unbounded)).enumerate() {
            if prefix.is_some_and(|p| !key.0.as_str().starts_with(p.as_str())) {
                return scan; // past the prefix: nothing further can match
            }
            if scanned == scan_max {
                scan.done = false; // another key that may match is there
                return scan;
            }
            scan.last = Some(key.clone());
            if wh.is_none_or(|w| &key.1 == w) {
                scan.pairs.push(pair.clone());
            }
        }
        scan
    }

    /// True if some warehouse has (or had) a pair of `sku`: pairs are never forgotten, and a
    /// refused first adjustment creates none.
    pub(crate) fn knows_sku(&self, sku: &Sku) -> bool {
        self.registry.read().by_sku.contains_key(sku)
    }

    /// Every pair of `sku`.
    pub(crate) fn of_sku(&self, sku: &Sku) -> Vec<Arc<Pair>> {
        self.registry.read().by_sku.get(sku).cloned().unwrap_or_default()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Pair>> {
        self.registry.read().by_key.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.registry.read().by_key.len()
    }

    /// What every pair of the lines' SKUs says it can still give, without asking the actors
    /// (a lock-free hint each; the actor's answer to `Hold` is what counts).
    pub(crate) fn available_hints(&self, lines: &[(Sku, u64)]) -> HashMap<(Sku, WarehouseId), u64> {
        let reg = self.registry.read();
        let mut out = HashMap::new();
        for (sku, _) in lines {
            for p in reg.by_sku.get(sku).into_iter().flatten() {
                out.insert((sku.clone(), p.warehouse_id.clone()), p.available_hint());
            }
        }
        out
    }

    /// Runs `f` with what each pair can still give by its hint (0 for a pair that does not
    /// exist), read in place under the registry's read lock: no key is cloned, nothing is
    /// allocated. `f` must not block.
    pub(crate) fn with_hints<R>(&self, f: impl FnOnce(&dyn Fn(&Sku, &WarehouseId) -> u64) -> R) -> R {
        let reg = self.registry.read();
        let free_at = |sku: &Sku, wh: &WarehouseId| reg.find(sku, wh).map_or(0, |p| p.available_hint());
        f(&free_at)
    }

    /// Whether some SKU of `want` (distinct SKUs, units wanted) has less in all its pairs, by
    /// their hints, than is wanted of it.
    pub(crate) fn any_short(&self, want: &[(&Sku, u64)]) -> bool {
        let reg = self.registry.read();
        want.iter().any(|(sku, q)| {
            let total: u64 = reg
                .by_sku
                .get(*sku)
                .into_iter()
                .flatten()
                .map(|p| p.available_hint())
                .sum();
            *q > total
        })
    }

    /// Sends a pair message, activating the pair's actor as needed; waits at most
    /// `mailbox_wait_ms` for room, then answers `Busy`.
    pub(crate) async fn send(&self, pair: &Arc<Pair>, mut msg: PairMsg) -> Result<(), EngineError> {
        loop {
            let tx = pair.sender(&self.core).map_err(|_| pair_dead(pair))?;
            match self.core.send(&tx, msg).await {
                Ok(()) => return Ok(()),
                // Refused by a closing or ended actor: the cell has moved on (cell.rs, step 5).
                Err(SendFail::Closed(m)) => msg = m,
                Err(SendFail::Busy) => return Err(Busy::Mailbox(pair.actor()).into()),
            }
        }
    }

    /// Sends a pair message that must not be lost (a durable fact, or the release of a hold),
    /// waiting for room however long the mailbox stays full. Fails only if the pair's actor
    /// is dead, which stops the engine anyway.
    pub(crate) async fn deliver(&self, pair: &Arc<Pair>, mut msg: PairMsg) -> Result<(), EngineError> {
        loop {
            let tx = pair.sender(&self.core).map_err(|_| pair_dead(pair))?;
            match tx.send(msg).await {
                Ok(()) => return Ok(()),
                Err(refused) => msg = refused.0,
            }
        }
    }

    /// The pair's durable counts.
    pub(crate) async fn inventory(&self, pair: &Arc<Pair>) -> Result<Inventory, EngineError> {
        if let Some(inv) = pair.cell.read_idle(|inv| inv.clone()) {
            return Ok(inv);
        }
        let (reply, rx) = oneshot::channel();
        self.send(pair, PairMsg::Read { reply }).await?;
        rx.await.map_err(|_| Unavailable::NoAnswer(pair.actor()).into())
    }

    pub(crate) async fn view(&self, pair: &Arc<Pair>) -> Result<PairView, EngineError> {
        let inv = self.inventory(pair).await?;
        Ok(pair.view_of(&inv))
    }

    /// An adjustment or a count of (sku, wh), decided, appended and applied by the pair's actor.
    pub(crate) async fn change(
        &self,
        sku: &Sku,
        wh: &WarehouseId,
        change: Change,
        reason: String,
        idem: Option<IdemSpec<PairView>>,
    ) -> Result<PairView, EngineError> {
        let pair = match self.get(sku, wh) {
            Some(pair) => pair,
            None => {
                // A pair that was never stocked holds nothing and nothing is pending at it:
                // decide against an empty one first, so a refused change leaves no pair behind
                // (the SKU stays unknown, its memory unspent). The pair's actor decides again.
                let empty = Inventory::default();
                let (decided, field) = match change {
                    Change::Delta(d) => (empty.decide_adjust(d, 0), "delta"),
                    Change::Set(n) => (empty.decide_set(n, 0, 0), "on_hand"),
                };
                let at = PairView {
                    sku: sku.clone(),
                    warehouse_id: wh.clone(),
                    on_hand: 0,
                    reserved: 0,
                    available: 0,
                };
                decided.map_err(|r| change_rejection(&at, r, field))?;
                self.get_or_create(sku, wh)
            }
        };
        let (reply, rx) = oneshot::channel();
        let request = ChangeRequest {
            change,
            reason,
            idem,
            reply,
        };
        self.send(&pair, PairMsg::Change(Box::new(request))).await?;
        rx.await.map_err(|_| Unavailable::NoAnswer(pair.actor()))?
    }
}

fn pair_dead(pair: &Pair) -> EngineError {
    Unavailable::ActorDead(pair.actor()).into()
}

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
    /// ([`Pairs::deliver`]): a lost release would hold the stock forever.
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

    /// The pair as errors name it.
    pub(crate) fn actor(&self) -> Actor {
        Actor::Pair {
            sku: self.sku.clone(),
            warehouse_id: self.warehouse_id.clone(),
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
}

type Landing = (
    Result<Durable, EngineError>,
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
        change_rejection(&self.pair.view_of(self.ledger.inventory()), r, field)
    }
}

/// The answer to an adjustment or count of `sku` that was refused; `field` is the one the
/// client sent (`delta` for an adjustment, `on_hand` for a count).
/// `at` is the pair's view when it was refused (its on_hand and reserved are named).
fn change_rejection(at: &PairView, r: InventoryRejection, field: &'static str) -> EngineError {
    match r {
        InventoryRejection::Insufficient { requested, available } => Rejection::BelowReserved(BelowReserved {
            sku: at.sku.clone(),
            warehouse_id: at.warehouse_id.clone(),
            requested,
            removable: available,
            on_hand: at.on_hand,
            reserved: at.reserved,
        })
        .into(),
        InventoryRejection::OutOfRange => Rejection::Validation(vec![FieldError::new(
            field,
            format!("would take the count beyond 10^{} units", ON_HAND_MAX.ilog10()),
        )])
        .into(),
    }
}
