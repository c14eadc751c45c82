//! The sale desk the engine decides with: one [`SaleDesk`] behind one lock, the serializer
//! of every sale decision (a leaf the core holds).
//!
//! Why a lock and not an actor: every operation on the desk is a pure function call of a few
//! hash lookups that never waits (no I/O, no await while the lock is held), so a lock gives the
//! same serialization as a mailbox without two channel hops per placement, and a placement
//! that fails can give its allowance back in a `Drop` ([`SaleHold`]), on every path, without
//! a message that might not be delivered. Placements of SKUs no sale governs do not take the
//! lock at all ([`SaleRegistry::active`] is false until the first sale exists).
//!
//! The protocol (ARCHITECTURE.md, "Flash sales"): `hold` before the placement's record,
//! `commit` once it is durable, `release` (the guard's drop) if it never becomes durable;
//! `order_updated` once an order's update (a cancellation, a partial one) is durable; definitions and marks applied once durable.

use crate::domain::ids::{OrderId, SaleId, Sku};
use crate::domain::order::{CancelledLine, NewOrder};
use crate::domain::sale::{Sale, SaleDesk, SaleMark, SalesState};
use crate::domain::{Millis, Order, Rejection};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

pub(crate) struct SaleRegistry {
    /// A std-style lock (parking_lot): held only for a pure decision or apply, never across
    /// an await.
    desk: Mutex<SaleDesk>,
    /// True once any sale exists: until then no placement takes the lock.
    active: AtomicBool,
    /// Serializes what the engine logs about sales (definitions and marks), so each is
    /// decided on the state the previous one left.
    pub(crate) write: tokio::sync::Mutex<()>,
    /// Wakes the sale clock when a definition changed.
    pub(crate) changed: Notify,
    /// Sales whose sold-out mark is being logged (so it is logged once).
    announcing: Mutex<BTreeSet<SaleId>>,
}

impl SaleRegistry {
    /// The desk of a recovered state: durable books, no holds.
    pub(crate) fn new(state: SalesState) -> SaleRegistry {
        SaleRegistry {
            active: AtomicBool::new(!state.is_empty()),
            desk: Mutex::new(SaleDesk::new(state)),
            write: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
            announcing: Mutex::new(BTreeSet::new()),
        }
    }

    /// True once any sale exists.
    pub(crate) fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Runs `f` on the desk, under its lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&SaleDesk) -> R) -> R {
        f(&self.desk.lock())
    }

    /// What can be refused without holding: windows, prices, per-order limits.
    pub(crate) fn check(&self, new: &NewOrder, now: Millis) -> Result<(), Rejection> {
        if !self.active() {
            return Ok(());
        }
        self.desk.lock().check(new, now)
    }

    /// Holds `order`'s allowance in every sale governing `new` at `now`, or refuses. The
    /// guard gives the allowance back when dropped, unless committed.
    pub(crate) fn hold(self: &Arc<Self>, order: OrderId, new: &NewOrder, now: Millis) -> Result<SaleHold, Rejection> {
        let sales = if self.active() {
            self.desk.lock().hold(order, new, now)?
        } else {
            Vec::new()
        };
        Ok(SaleHold {
            registry: self.clone(),
            order,
            sales,
        })
    }

    /// A durable update of `order`: the units its partial cancellations took, and all of
    /// them if it left the order cancelled, go back to its customer's allowance.
    pub(crate) fn order_updated(&self, order: OrderId, cancelled_units: &[CancelledLine], cancelled: bool) {
        if self.active() {
            self.desk.lock().order_updated(order, cancelled_units, cancelled);
        }
    }

    /// A durable `SaleUpserted`.
    pub(crate) fn upserted(&self, sale: Sale) {
        self.desk.lock().upserted(sale);
        self.active.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// A durable `SaleMarked`.
    pub(crate) fn marked(&self, id: &SaleId, mark: SaleMark, at: Millis) {
        self.desk.lock().marked(id, mark, at);
    }

    /// Claims the right to log `id`'s sold-out mark: false if it is logged or being logged.
    pub(crate) fn claim_sold_out(&self, id: &SaleId) -> bool {
        let logged = self.read(|d| d.state().get(id).is_none_or(|b| b.sold_out_at.is_some()));
        !logged && self.announcing.lock().insert(id.clone())
    }

    /// The sold-out mark of `id` is logged (or could not be): another may be tried.
    pub(crate) fn sold_out_done(&self, id: &SaleId) {
        self.announcing.lock().remove(id);
    }

    /// The SKUs of `sales`.
    pub(crate) fn skus(&self, sales: &[SaleId]) -> Vec<(SaleId, Sku)> {
        self.read(|d| {
            sales
                .iter()
                .filter_map(|id| d.state().get(id).map(|b| (id.clone(), b.sale.sku.clone())))
                .collect()
        })
    }
}

/// A placement's held allowance: given back when dropped, unless [`SaleHold::commit`]ted.
pub(crate) struct SaleHold {
    registry: Arc<SaleRegistry>,
    order: OrderId,
    /// The sales the order holds allowance in (empty: none governs it).
    sales: Vec<SaleId>,
}

impl SaleHold {
    pub(crate) fn sales(&self) -> &[SaleId] {
        &self.sales
    }

    /// The placement's `OrderPlacedInSale` record is durable: the hold becomes the customer's
    /// durable holding.
    pub(crate) fn commit(mut self, order: &Order) {
        assert_eq!(order.id, self.order, "a hold commits its own order");
        let sales = std::mem::take(&mut self.sales);
        if !sales.is_empty() {
            self.registry.desk.lock().commit(order, &sales);
        }
    }
}

impl Drop for SaleHold {
    fn drop(&mut self) {
        if !self.sales.is_empty() {
            self.registry.desk.lock().release(self.order);
        }
    }
}
