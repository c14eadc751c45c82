//! The records the log stores and [`EngineState`], the fold of those records.
//!
//! `EngineState::apply` is the replay path: recovery and the snapshot builder fold records into
//! it. Live running applies the same per-actor functions (`Inventory::apply`, `Order::apply`,
//! `inventory_effects`) inside the actors, so the state the actors hold after the same records
//! has the same digest (tested).
//!
//! Architecture invariant: records are applied in dense LSN order; the first record is LSN 1.

use super::ids::{OrderId, Sku, WarehouseId};
use super::inventory::{Inventory, InventoryEffect};
use super::order::{Order, OrderEvent, OrderStatus, inventory_effects, placement_effects};
use super::{FastMap, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    pub name: String,
    pub country: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Lower numbers are preferred when distance does not decide.
    pub priority: i64,
    /// Carrier for shipments from this warehouse; `standard` when unset.
    pub carrier: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What one log record says happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    WarehouseUpserted {
        warehouse: Warehouse,
    },
    InventoryAdjusted {
        sku: Sku,
        warehouse_id: WarehouseId,
        delta: i64,
        reason: String,
        at: Millis,
    },
    /// A whole placement: the order and, implied by its allocations, every reservation.
    OrderPlaced {
        order: std::sync::Arc<Order>,
    },
    /// Events of one command on one order, with the status changes they caused (derived, kept
    /// so the event stream can say `order.state_changed` without re-folding the order).
    OrderUpdated {
        order_id: OrderId,
        events: Vec<OrderEvent>,
        changes: Vec<StatusChange>,
    },
}

/// A status change caused by a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub reason: String,
}

/// The first successful response to a request that carried an `Idempotency-Key`, logged in the
/// same record as the change it answered, so the two are durable together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    /// SHA-256 of method, path and body.
    pub fingerprint: [u8; 32],
    pub status: u16,
    /// As bytes, not a sequence of numbers: the same postcard encoding (length, then the
    /// bytes), written and read in one copy.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    pub at: Millis,
}

/// One log record: an entry and, optionally, the idempotent response it produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub entry: Entry,
    pub idempotency: Option<IdempotencyRecord>,
}

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
            Entry::OrderPlaced { order } => {
                self.last_at = self.last_at.max(order.created_at);
                assert!(!self.orders.contains_key(&order.id), "order {} placed twice", order.id);
                for (sku, wh, eff) in placement_effects(&order) {
                    self.pair(&sku, &wh).apply(&eff);
                }
                self.last_order_seq = self.last_order_seq.max(order.id.0);
                self.orders.insert(order.id, order);
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
                for (sku, wh, eff) in effects {
                    self.pair(&sku, &wh).apply(&eff);
                }
            }
        }
    }

    /// The pair's inventory, created empty on first use.
    fn pair(&mut self, sku: &Sku, wh: &WarehouseId) -> &mut Inventory {
        self.inventory.entry((sku.clone(), wh.clone())).or_default()
    }

    /// Checks the cross-actor invariants: every reservation belongs to a live order that holds
    /// it, and every unshipped allocation of a `payment_pending`..`processing` order is reserved.
    pub fn check_invariants(&self) -> Result<(), String> {
        for ((sku, wh), inv) in &self.inventory {
            if inv.on_hand() < inv.reserved() {
                return Err(format!(
                    "{sku}@{wh}: on_hand {} < reserved {}",
                    inv.on_hand(),
                    inv.reserved()
                ));
            }
            for (oid, q) in inv.reservations() {
                let Some(o) = self.orders.get(&oid) else {
                    return Err(format!("{sku}@{wh}: reservation of unknown order {oid}"));
                };
                if o.status.is_terminal() {
                    return Err(format!(
                        "{sku}@{wh}: reservation {q} of {} order {oid}",
                        o.status.as_str()
                    ));
                }
            }
        }
        for o in self.orders.values() {
            let mut expect: HashMap<(Sku, WarehouseId), u64> = HashMap::new();
            if !o.status.is_terminal() {
                for (sku, wh, eff) in placement_effects(o) {
                    *expect.entry((sku, wh)).or_insert(0) += eff.decrement();
                }
                for s in o
                    .shipments
                    .iter()
                    .filter(|s| s.status != super::order::ShipmentStatus::Pending)
                {
                    for l in &s.items {
                        *expect
                            .get_mut(&(l.sku.clone(), s.warehouse_id.clone()))
                            .expect("shipped from allocation") -= l.quantity;
                    }
                }
            }
            for ((sku, wh), q) in expect {
                let held = self
                    .inventory
                    .get(&(sku.clone(), wh.clone()))
                    .map(|i| i.reservation(o.id))
                    .unwrap_or(0);
                if held != q {
                    return Err(format!(
                        "order {} expects {q} reserved at {sku}@{wh}, found {held}",
                        o.id
                    ));
                }
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
        }
        let mut keys: Vec<_> = self.idempotency.keys().collect();
        keys.sort();
        for k in keys {
            hash_bytes(&mut h, &self.idempotency[k]);
        }
        h.finish()
    }
}

/// Applies `events` to `order` in place and returns the stock they move and the status changes
/// they cause. The one function live actors and replay both use.
pub fn apply_order_events(
    order: &mut Order,
    events: &[OrderEvent],
) -> (Vec<(Sku, WarehouseId, InventoryEffect)>, Vec<StatusChange>) {
    let mut effects = Vec::new();
    let mut changes = Vec::new();
    for ev in events {
        effects.extend(inventory_effects(order, ev));
        let before = order.status;
        let n_history = order.history.len();
        order.apply(ev);
        if order.status != before {
            let reason = order
                .history
                .get(n_history)
                .map(|t| t.reason.clone())
                .unwrap_or_default();
            changes.push(StatusChange {
                from: before,
                to: order.status,
                reason,
            });
        }
    }
    (effects, changes)
}

fn hash_bytes<T: Serialize>(h: &mut impl Hasher, v: &T) {
    let bytes = postcard::to_allocvec(v).expect("domain values serialize");
    bytes.hash(h);
}
