//! [`EngineState`], the fold of the log's records (`record.rs`).
//!
//! `EngineState::apply` is the replay path: recovery and the snapshot builder fold records into
//! it. Live running applies the same per-actor functions (`Inventory::apply`, `Order::apply`,
//! `inventory_effects`) inside the actors, so the state the actors hold after the same records
//! has the same digest (tested).
//!
//! Architecture invariant: records are applied in dense LSN order; the first record is LSN 1.

use super::ids::{OrderId, SaleId, Sku, WarehouseId};
use super::inventory::{Inventory, InventoryEffect};
use super::order::{Order, OrderStatus, ShipmentStatus, apply_order_events, placement_effects};
use super::record::{Entry, IdempotencyRecord, Record};
use super::sale::{SaleBook, SalesState, units_cancelled};
use super::warehouse::Warehouse;
use super::{FastMap, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// The whole engine's durable state as a plain fold of records.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EngineState {
    /// LSN the next record must have.
    pub next_lsn: u64,
    pub warehouses: BTreeMap<WarehouseId, Warehouse>,
    pub inventory: FastMap<(Sku, WarehouseId), Inventory>,
    /// Shared with the engine's order cells after recovery (no copy); updated copy-on-write.
    pub orders: FastMap<OrderId, std::sync::Arc<Order>>,
    /// Stored idempotent responses, as a snapshot holds them. `apply` does not fold them:
    /// the engine's idempotency module owns their retention and bounds
    /// (`engine/idempotency.rs`), and the replay fold hands them to it.
    pub idempotency: HashMap<String, IdempotencyRecord>,
    /// Highest order number ever placed (0 if none).
    pub last_order_seq: u64,
    /// Time of the newest record applied (the snapshot's notion of "now", e.g. for the
    /// retention of idempotent responses).
    pub last_at: Millis,
    /// Flash sales. Not part of the struct's own encoding (snapshot format 1 ends before it):
    /// the codec writes it after the rest in formats 2 and 3 and reads format 1 with no sales.
    #[serde(skip)]
    pub sales: SalesState,
}

impl EngineState {
    pub fn new() -> EngineState {
        EngineState {
            next_lsn: 1,
            ..Default::default()
        }
    }

    /// Applies record `lsn`. Panics if LSNs are not dense or a domain invariant breaks.
    /// Takes the record by value: replay owns what it decoded, and moving the order into the
    /// map instead of cloning it is most of the difference in replay speed. The idempotent
    /// response a record may carry is not folded here (see `idempotency`).
    pub fn apply(&mut self, lsn: u64, record: Record) {
        assert_eq!(lsn, self.next_lsn, "records must be applied in dense LSN order");
        self.next_lsn = lsn + 1;
        match record.entry {
            Entry::WarehouseUpserted { warehouse } => {
                self.last_at = self.last_at.max(warehouse.updated_at);
                self.warehouses.insert(warehouse.id.clone(), warehouse);
            }
            Entry::InventoryAdjusted {
                sku,
                warehouse_id,
                delta,
                at,
                ..
            } => {
                self.last_at = self.last_at.max(at);
                self.pair(&sku, &warehouse_id)
                    .apply(&InventoryEffect::Adjusted { delta });
            }
            Entry::OrderPlaced { order } => self.apply_placed(order),
            Entry::OrderPlacedInSale { order, sales } => {
                self.sales.apply_placed(&order, &sales);
                self.apply_placed(order);
            }
            Entry::SaleUpserted { sale } => {
                self.last_at = self.last_at.max(sale.updated_at);
                self.sales.apply_upsert(sale);
            }
            Entry::SaleMarked { sale_id, mark, at } => {
                self.last_at = self.last_at.max(at);
                self.sales.apply_mark(&sale_id, mark, at);
            }
            Entry::OrderUpdated {
                order_id,
                events,
                changes,
            } => {
                // The replay owns the only reference: `make_mut` does not copy.
                let order =
                    std::sync::Arc::make_mut(self.orders.get_mut(&order_id).expect("update of an unknown order"));
                let (effects, derived) = apply_order_events(order, &events);
                debug_assert_eq!(derived, changes, "recorded status changes must match the fold");
                self.last_at = self.last_at.max(order.updated_at);
                let cancelled = order.status == OrderStatus::Cancelled;
                for (sku, wh, eff) in effects {
                    self.pair(&sku, &wh).apply(&eff);
                }
                self.sales
                    .apply_order_update(order_id, &units_cancelled(&events), cancelled);
            }
        }
    }

    fn apply_placed(&mut self, order: std::sync::Arc<Order>) {
        self.last_at = self.last_at.max(order.created_at);
        assert!(!self.orders.contains_key(&order.id), "order {} placed twice", order.id);
        for (sku, wh, eff) in placement_effects(&order) {
            self.pair(&sku, &wh).apply(&eff);
        }
        self.last_order_seq = self.last_order_seq.max(order.id.0);
        self.orders.insert(order.id, order);
    }

    /// The pair's inventory, created empty on first use.
    fn pair(&mut self, sku: &Sku, wh: &WarehouseId) -> &mut Inventory {
        self.inventory.entry((sku.clone(), wh.clone())).or_default()
    }

    /// Checks the cross-actor invariants: every reservation belongs to a live order that holds
    /// it, and every unshipped allocation of a `payment_pending`..`processing` order is reserved.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for ((sku, wh), inv) in &self.inventory {
            let at = || (sku.clone(), wh.clone());
            if inv.on_hand() < inv.reserved() {
                let (sku, warehouse_id) = at();
                return Err(InvariantViolation::OverReserved {
                    sku,
                    warehouse_id,
                    on_hand: inv.on_hand(),
                    reserved: inv.reserved(),
                });
            }
            for (order, quantity) in inv.reservations() {
                let Some(o) = self.orders.get(&order) else {
                    let (sku, warehouse_id) = at();
                    return Err(InvariantViolation::UnknownOrder {
                        sku,
                        warehouse_id,
                        order,
                    });
                };
                if o.status.is_terminal() {
                    let (sku, warehouse_id) = at();
                    return Err(InvariantViolation::TerminalOrder {
                        sku,
                        warehouse_id,
                        order,
                        quantity,
                        status: o.status,
                    });
                }
            }
        }
        self.orders.values().try_for_each(|o| self.check_reserved_for(o))?;
        self.check_sales()
    }

    /// Every order a sale counts as live exists, is the customer's and is not cancelled; and
    /// every book's holdings add up.
    fn check_sales(&self) -> Result<(), InvariantViolation> {
        for book in self.sales.books() {
            for (order, user, units) in book.members() {
                let ok = self.orders.get(&order).is_some_and(|o| {
                    &o.user_id == user
                        && o.status != OrderStatus::Cancelled
                        && SaleBook::units_in(o, &book.sale.sku) == units
                });
                if !ok {
                    return Err(InvariantViolation::SaleMember {
                        sale: book.sale.id.clone(),
                        order,
                    });
                }
            }
        }
        if !self.sales.check() {
            return Err(InvariantViolation::SaleHoldings);
        }
        Ok(())
    }

    /// Every unshipped allocation of a live order `o` is reserved at its pair, exactly.
    fn check_reserved_for(&self, o: &Order) -> Result<(), InvariantViolation> {
        let mut expect: HashMap<(Sku, WarehouseId), u64> = HashMap::new();
        if !o.status.is_terminal() {
            for (sku, wh, eff) in placement_effects(o) {
                *expect.entry((sku, wh)).or_insert(0) += eff.decrement();
            }
            for s in o.shipments.iter().filter(|s| s.status != ShipmentStatus::Pending) {
                for l in &s.items {
                    *expect
                        .get_mut(&(l.sku.clone(), s.warehouse_id.clone()))
                        .expect("shipped from allocation") -= l.quantity;
                }
            }
            for c in &o.extras.cancelled {
                *expect
                    .get_mut(&(c.sku.clone(), c.warehouse_id.clone()))
                    .expect("cancelled from allocation") -= c.quantity;
            }
        }
        for ((sku, warehouse_id), expected) in expect {
            let found = self
                .inventory
                .get(&(sku.clone(), warehouse_id.clone()))
                .map(|i| i.reservation(o.id))
                .unwrap_or(0);
            if found != expected {
                return Err(InvariantViolation::ReservationMismatch {
                    order: o.id,
                    sku,
                    warehouse_id,
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }

    /// A digest of everything but the idempotency table's pruning horizon. Two states with the
    /// same digest hold the same warehouses, stock, reservations and orders.
    pub fn digest(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.next_lsn.hash(&mut h);
        for w in self.warehouses.values() {
            hash_bytes(&mut h, w);
        }
        let mut pairs: Vec<_> = self
            .inventory
            .iter()
            .filter(|(_, i)| **i != Inventory::default())
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        for ((sku, wh), inv) in pairs {
            sku.hash(&mut h);
            wh.hash(&mut h);
            inv.on_hand().hash(&mut h);
            inv.reserved().hash(&mut h);
            let mut r: Vec<_> = inv.reservations().collect();
            r.sort();
            r.hash(&mut h);
        }
        let mut ids: Vec<_> = self.orders.keys().collect();
        ids.sort();
        for id in ids {
            hash_bytes(&mut h, &self.orders[id]);
            // Not part of the order's version-1 encoding (see `order::extras`).
            hash_bytes(&mut h, &self.orders[id].extras);
        }
        let mut keys: Vec<_> = self.idempotency.keys().collect();
        keys.sort();
        for k in keys {
            hash_bytes(&mut h, &self.idempotency[k]);
        }
        self.sales.digest(&mut h);
        h.finish()
    }
}

fn hash_bytes<T: Serialize>(h: &mut impl Hasher, v: &T) {
    let bytes = postcard::to_allocvec(v).expect("domain values serialize");
    bytes.hash(h);
}

/// A cross-actor invariant that a state breaks (found by [`EngineState::check_invariants`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvariantViolation {
    /// A pair reserves more than it has on hand.
    #[error("{sku}@{warehouse_id}: on_hand {on_hand} < reserved {reserved}")]
    OverReserved {
        sku: Sku,
        warehouse_id: WarehouseId,
        on_hand: u64,
        reserved: u64,
    },
    /// A pair holds a reservation of an order that does not exist.
    #[error("{sku}@{warehouse_id}: reservation of unknown order {order}")]
    UnknownOrder {
        sku: Sku,
        warehouse_id: WarehouseId,
        order: OrderId,
    },
    /// A pair holds a reservation of a cancelled or refunded order.
    #[error("{sku}@{warehouse_id}: reservation {quantity} of {} order {order}", .status.as_str())]
    TerminalOrder {
        sku: Sku,
        warehouse_id: WarehouseId,
        order: OrderId,
        quantity: u64,
        status: OrderStatus,
    },
    /// A live order's unshipped allocation at a pair differs from what the pair reserves.
    #[error("order {order} expects {expected} reserved at {sku}@{warehouse_id}, found {found}")]
    ReservationMismatch {
        order: OrderId,
        sku: Sku,
        warehouse_id: WarehouseId,
        expected: u64,
        found: u64,
    },
    /// A sale counts an order as live that does not exist, is another customer's or is
    /// cancelled.
    #[error("sale {sale} counts order {order}, which is not a live order of its customer")]
    SaleMember { sale: SaleId, order: OrderId },
    /// A sale's holdings do not add up to its live orders.
    #[error("a sale's holdings do not add up to its orders")]
    SaleHoldings,
}

/// For callers that collect violations as text (test harnesses checking several things).
impl From<InvariantViolation> for String {
    fn from(v: InvariantViolation) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Key;
    use crate::domain::money::Currency;
    use crate::domain::order::{Address, Allocation, NewLine, NewOrder};
    use std::sync::Arc;

    fn key<K: From<Key>>(s: &str) -> K {
        K::from(Key::parse(s).unwrap())
    }

    /// A state with 5 units of `sku-1` at `wh-1`, 2 of them reserved by order 1.
    fn placed() -> EngineState {
        let (sku, wh): (Sku, WarehouseId) = (key("sku-1"), key("wh-1"));
        let mut state = EngineState::new();
        let adjusted = Entry::InventoryAdjusted {
            sku: sku.clone(),
            warehouse_id: wh.clone(),
            delta: 5,
            reason: "count".into(),
            at: Millis(1),
        };
        state.apply(
            1,
            Record {
                entry: adjusted,
                idempotency: None,
            },
        );
        let new = NewOrder {
            user_id: key("u-1"),
            currency: Currency::parse("USD").unwrap(),
            lines: vec![NewLine {
                sku,
                quantity: 2,
                unit_price: 1.into(),
                discount: 0.into(),
            }],
            tax_amount: 0.into(),
            shipping_amount: 0.into(),
            discount_amount: 0.into(),
            shipping_address: Address::default(),
            billing_address: None,
            reservation_ttl_ms: 1000,
            extras: Default::default(),
        };
        let order = new.into_order(
            OrderId(1),
            vec![vec![Allocation {
                warehouse_id: wh,
                quantity: 2,
            }]],
            Millis(2),
        );
        let placed = Entry::OrderPlaced { order: Arc::new(order) };
        state.apply(
            2,
            Record {
                entry: placed,
                idempotency: None,
            },
        );
        state
    }

    #[test]
    fn a_consistent_state_passes() {
        assert_eq!(placed().check_invariants(), Ok(()));
    }

    #[test]
    fn a_reservation_without_its_order_is_named() {
        let mut state = placed();
        state.orders.clear();
        let err = state.check_invariants().unwrap_err();
        assert!(
            matches!(err, InvariantViolation::UnknownOrder { order: OrderId(1), .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "sku-1@wh-1: reservation of unknown order ORD-0000000001"
        );
    }

    #[test]
    fn a_terminal_order_holding_stock_is_named() {
        let mut state = placed();
        Arc::make_mut(state.orders.get_mut(&OrderId(1)).unwrap()).status = OrderStatus::Cancelled;
        let err = state.check_invariants().unwrap_err();
        assert!(
            matches!(err, InvariantViolation::TerminalOrder { quantity: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_allocation_reserved_nowhere_is_named() {
        let mut state = placed();
        state.inventory.clear();
        let err = state.check_invariants().unwrap_err();
        assert!(
            matches!(
                err,
                InvariantViolation::ReservationMismatch {
                    expected: 2,
                    found: 0,
                    ..
                }
            ),
            "{err}"
        );
    }
}
