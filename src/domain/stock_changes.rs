//! What each log record does to the pairs' counts, as the event stream reports it
//! (`inventory.changed`): the net change of every pair a record touches, and the fold of
//! those changes into each pair's figures (`on_hand`, `reserved`).
//!
//! The fold runs in LSN order over the records, so the figures after record N are a function
//! of the log alone: the same live (the feed folds each record as it publishes it) and when a
//! stream replays history (it folds the same records again). Since every change is an
//! addition, the fold after the last record equals the pairs' own state, whatever order the
//! actors applied the changes in (the replay-equals-live invariant).
//!
//! An order update's stock changes are computed with `inventory_effects` from the order in
//! its state *after* the record, or any later state, instead of the state before it (which a
//! stream replaying history no longer has). That gives the same answer because every part an
//! effect reads is fixed once it exists: an allocation, a shipment's items and warehouse, a
//! return's items, a partial cancellation's units (the event carries them); and a
//! cancellation or a declined payment, which release what was still reserved (allocated, less
//! cancelled units and shipped ones), leave the order where nothing ships or is cancelled any
//! more. Creating shipments (a fulfilment, a later partial one) moves no stock: their units
//! stay reserved until they ship. The order actor asserts this
//! equality on every update it commits (debug builds, so every test checks it).

use super::FastMap;
use super::ids::{OrderId, Sku, WarehouseId};
use super::inventory::{Inventory, InventoryEffect};
use super::order::{Order, OrderEvent, inventory_effects, placement_effects};
use super::record::Entry;

/// Why a pair's counts changed, as `inventory.changed` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockCause {
    /// An adjustment or a count (`POST /v1/inventory/adjustments`, `PUT /v1/inventory/..`).
    Adjustment,
    /// Units reserved by a placed order.
    Placement,
    /// A reservation released by a cancellation.
    Cancellation,
    /// A reservation released because it expired before payment.
    Expiry,
    /// A reservation released because the payment was declined.
    PaymentDeclined,
    /// Reserved units shipped: they left on_hand and reserved.
    Shipment,
    /// Returned units put back on hand.
    Restock,
}

impl StockCause {
    pub const ALL: [StockCause; 7] = [
        StockCause::Adjustment,
        StockCause::Placement,
        StockCause::Cancellation,
        StockCause::Expiry,
        StockCause::PaymentDeclined,
        StockCause::Shipment,
        StockCause::Restock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StockCause::Adjustment => "adjustment",
            StockCause::Placement => "placement",
            StockCause::Cancellation => "cancellation",
            StockCause::Expiry => "expiry",
            StockCause::PaymentDeclined => "payment_declined",
            StockCause::Shipment => "shipment",
            StockCause::Restock => "restock",
        }
    }
}

/// The net change one record makes to one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairDelta {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub on_hand: i64,
    pub reserved: i64,
    /// What the record did to the pair first (a record rarely does two things to one pair).
    pub cause: StockCause,
    /// The order whose record it is, if any.
    pub order_id: Option<OrderId>,
}

/// A pair's figures after a record changed them, and by how much it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairFigures {
    pub delta: PairDelta,
    pub on_hand: u64,
    pub reserved: u64,
}

impl PairFigures {
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// How one effect moves (on_hand, reserved).
fn effect_deltas(e: &InventoryEffect) -> (i64, i64) {
    let q = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    match e {
        InventoryEffect::Adjusted { delta } => (*delta, 0),
        InventoryEffect::Reserved { quantity, .. } => (0, q(*quantity)),
        InventoryEffect::Released { quantity, .. } => (0, -q(*quantity)),
        InventoryEffect::Committed { quantity, .. } => (-q(*quantity), -q(*quantity)),
        InventoryEffect::Restocked { quantity } => (q(*quantity), 0),
    }
}

/// True if an order event can move stock (only these need the order to be looked up).
pub fn moves_stock(ev: &OrderEvent) -> bool {
    matches!(
        ev,
        OrderEvent::Cancelled { .. }
            | OrderEvent::ItemsCancelled { .. }
            | OrderEvent::PaymentDeclined { .. }
            | OrderEvent::ShipmentShipped { .. }
            | OrderEvent::ReturnReceived { restock: true, .. }
    )
}

fn cause_of(ev: &OrderEvent) -> StockCause {
    match ev {
        // The expiry task cancels as the system; a person or client cancels as someone else.
        OrderEvent::Cancelled { actor, .. } if actor == "system" => StockCause::Expiry,
        OrderEvent::Cancelled { .. } | OrderEvent::ItemsCancelled { .. } => StockCause::Cancellation,
        OrderEvent::PaymentDeclined { .. } => StockCause::PaymentDeclined,
        OrderEvent::ShipmentShipped { .. } => StockCause::Shipment,
        _ => StockCause::Restock,
    }
}

/// The net change of every pair `entry` touches, in the order it first touches them; pairs
/// whose changes cancel out are left out. `order` is the order an `OrderUpdated` entry
/// updates, in its state after the entry or any later one (see the module comment); without
/// it an update's stock changes cannot be known and none are returned.
pub fn record_deltas(entry: &Entry, order: Option<&Order>) -> Vec<PairDelta> {
    let mut out: Vec<PairDelta> = Vec::new();
    let mut add = |sku: &Sku, wh: &WarehouseId, e: &InventoryEffect, cause, order_id| {
        let (on_hand, reserved) = effect_deltas(e);
        match out.iter_mut().find(|d| &d.sku == sku && &d.warehouse_id == wh) {
            Some(d) => {
                d.on_hand += on_hand;
                d.reserved += reserved;
            }
            None => out.push(PairDelta {
                sku: sku.clone(),
                warehouse_id: wh.clone(),
                on_hand,
                reserved,
                cause,
                order_id,
            }),
        }
    };
    match entry {
        Entry::WarehouseUpserted { .. } | Entry::SaleUpserted { .. } | Entry::SaleMarked { .. } => {}
        Entry::InventoryAdjusted {
            sku,
            warehouse_id,
            delta,
            ..
        } => add(
            sku,
            warehouse_id,
            &InventoryEffect::Adjusted { delta: *delta },
            StockCause::Adjustment,
            None,
        ),
        Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => {
            for (sku, wh, e) in placement_effects(order) {
                add(&sku, &wh, &e, StockCause::Placement, Some(order.id));
            }
        }
        Entry::OrderUpdated { order_id, events, .. } => {
            let Some(order) = order else {
                return Vec::new();
            };
            assert_eq!(order.id, *order_id, "stock changes of one order computed from another");
            for ev in events.iter().filter(|e| moves_stock(e)) {
                for (sku, wh, e) in inventory_effects(order, ev) {
                    add(&sku, &wh, &e, cause_of(ev), Some(*order_id));
                }
            }
        }
    }
    out.retain(|d| d.on_hand != 0 || d.reserved != 0);
    out
}

/// Every pair's (on_hand, reserved) as the fold of the records so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StockFigures {
    by_pair: FastMap<(Sku, WarehouseId), (u64, u64)>,
}

impl StockFigures {
    /// The figures of a recovered state's pairs.
    pub fn of_inventory<'a>(pairs: impl IntoIterator<Item = (&'a (Sku, WarehouseId), &'a Inventory)>) -> StockFigures {
        let by_pair = pairs
            .into_iter()
            .map(|(k, inv)| (k.clone(), (inv.on_hand(), inv.reserved())))
            .collect();
        StockFigures { by_pair }
    }

    /// (on_hand, reserved) of a pair; (0, 0) for one never touched.
    pub fn get(&self, sku: &Sku, wh: &WarehouseId) -> (u64, u64) {
        self.by_pair.get(&(sku.clone(), wh.clone())).copied().unwrap_or((0, 0))
    }

    /// Sets a pair's figures (a stream's starting point, computed back from later figures).
    pub fn set(&mut self, sku: Sku, wh: WarehouseId, figures: (u64, u64)) {
        self.by_pair.insert((sku, wh), figures);
    }

    /// Folds one record's changes and returns each pair's figures after them.
    pub fn apply(&mut self, deltas: Vec<PairDelta>) -> Vec<PairFigures> {
        deltas
            .into_iter()
            .map(|d| {
                let slot = self
                    .by_pair
                    .entry((d.sku.clone(), d.warehouse_id.clone()))
                    .or_insert((0, 0));
                slot.0 = shift(slot.0, d.on_hand);
                slot.1 = shift(slot.1, d.reserved);
                PairFigures {
                    on_hand: slot.0,
                    reserved: slot.1,
                    delta: d,
                }
            })
            .collect()
    }
}

/// `n + delta`, clamped at zero: a fold that starts from a wrong base must not wrap around
/// (the fold itself never goes below zero; the tests compare it with the pairs).
fn shift(n: u64, delta: i64) -> u64 {
    u64::try_from(i128::from(n) + i128::from(delta)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Millis;

    fn key(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    #[test]
    fn an_adjustment_changes_on_hand_and_the_fold_carries_it() {
        let (sku, wh) = (key("A"), WarehouseId::parse("W").unwrap());
        let entry = |delta| Entry::InventoryAdjusted {
            sku: sku.clone(),
            warehouse_id: wh.clone(),
            delta,
            reason: "count".into(),
            at: Millis(1),
        };
        let mut fold = StockFigures::default();
        let after = fold.apply(record_deltas(&entry(10), None));
        assert_eq!((after[0].on_hand, after[0].reserved, after[0].available()), (10, 0, 10));
        assert_eq!(after[0].delta.cause, StockCause::Adjustment);
        let after = fold.apply(record_deltas(&entry(-3), None));
        assert_eq!((after[0].on_hand, after[0].delta.on_hand), (7, -3));
        assert_eq!(fold.get(&sku, &wh), (7, 0));
    }

    #[test]
    fn an_update_without_its_order_reports_nothing_and_a_warehouse_moves_no_stock() {
        let entry = Entry::OrderUpdated {
            order_id: OrderId(1),
            events: vec![],
            changes: vec![],
        };
        assert!(record_deltas(&entry, None).is_empty());
    }

    #[test]
    fn the_fold_never_wraps_below_zero() {
        assert_eq!(shift(2, -5), 0);
        assert_eq!(shift(2, 5), 7);
    }
}
