//! The projection: what a batch of log records changes in the read model, as rows.
//!
//! Pure: no I/O, no clock. The projector keeps its own fold of the log ([`EngineState`], the
//! same `apply` as replay), because a record does not carry every figure a table shows (an
//! order's status after a payment, a pair's reserved count after a cancellation). A batch is
//! applied to the fold, and [`Projection::apply_batch`] returns a [`Changes`]: the current
//! state of every warehouse, pair and order the batch touched, plus, for each order, which of
//! its parts are new or changed since the batch began. `statements.rs` turns it into SQL.
//!
//! Architecture invariant: what the rows say is a function of the fold's state, never of the
//! records alone; upserting the state of an entity again is harmless (every row has a key),
//! so a full projection ([`Projection::everything`]) may follow any partial one.

use crate::domain::order::{Order, placement_effects};
use crate::domain::{EngineState, Entry, FastMap, OrderId, Record, Sku, Warehouse, WarehouseId};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A pair's counts as the `inventory` table holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairRow {
    pub sku: Sku,
    pub warehouse_id: WarehouseId,
    pub on_hand: u64,
    pub reserved: u64,
}

/// An order as it is after the batch, and what of it is new or changed since before it.
/// Indexes name positions in the order's own vectors.
#[derive(Clone, Debug)]
pub struct OrderChange {
    pub order: Arc<Order>,
    /// Placed in this batch (or projected whole): its lines and allocations are new too.
    pub placed: bool,
    /// History entries from this index on are new (history only grows).
    pub history_from: usize,
    pub attempts: Vec<usize>,
    pub shipments: Vec<usize>,
    /// Shipments whose items are new (created in this batch).
    pub new_shipments: Vec<usize>,
    pub returns: Vec<usize>,
    pub new_returns: Vec<usize>,
    pub refunds: Vec<usize>,
}

/// Everything a batch changes in the read model, and the log position it reaches.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// The last LSN applied (the position stored with these rows).
    pub last_lsn: u64,
    pub warehouses: Vec<Warehouse>,
    pub inventory: Vec<PairRow>,
    pub orders: Vec<OrderChange>,
}

impl Changes {
    /// True when no table changes (only the position moves).
    pub fn is_empty(&self) -> bool {
        self.warehouses.is_empty() && self.inventory.is_empty() && self.orders.is_empty()
    }
}

/// The projector's fold of the log.
pub struct Projection {
    state: EngineState,
}

impl Projection {
    /// Starts from a state (a snapshot's, or the empty one).
    pub fn new(state: EngineState) -> Projection {
        Projection { state }
    }

    /// The last LSN folded (0 before the first record).
    pub fn last_lsn(&self) -> u64 {
        self.state.next_lsn - 1
    }

    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// Folds a record without producing rows: records the read model already holds.
    pub fn skip(&mut self, lsn: u64, record: Record) {
        self.state.apply(lsn, record);
    }

    /// Folds a batch of records (dense, in LSN order, continuing the fold) and returns what
    /// they changed.
    pub fn apply_batch(&mut self, records: impl IntoIterator<Item = (u64, Record)>) -> Changes {
        let mut warehouses = BTreeSet::new();
        let mut pairs: BTreeSet<(Sku, WarehouseId)> = BTreeSet::new();
        // The order as it was before the batch: `None` if the batch placed it.
        let mut before: FastMap<OrderId, Option<Arc<Order>>> = FastMap::default();
        let mut touched: Vec<OrderId> = Vec::new();
        for (lsn, record) in records {
            match &record.entry {
                Entry::WarehouseUpserted { warehouse } => {
                    warehouses.insert(warehouse.id.clone());
                }
                Entry::InventoryAdjusted { sku, warehouse_id, .. } => {
                    pairs.insert((sku.clone(), warehouse_id.clone()));
                }
                // Sales are not projected (the API's GET /v1/sales has their figures); the
                // orders they place are, like any other.
                Entry::SaleUpserted { .. } | Entry::SaleMarked { .. } => {}
                Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => {
                    before.insert(order.id, None);
                    touched.push(order.id);
                }
                Entry::OrderUpdated { order_id, .. } => {
                    if !before.contains_key(order_id) {
                        let old = self.state.orders.get(order_id).cloned();
                        assert!(old.is_some(), "update of an unknown order {order_id}");
                        before.insert(*order_id, old);
                        touched.push(*order_id);
                    }
                }
            }
            self.state.apply(lsn, record);
        }
        let mut orders = Vec::with_capacity(touched.len());
        for id in touched {
            let order = self.state.orders[&id].clone();
            stock_pairs(&order, &mut pairs);
            orders.push(diff(before.remove(&id).flatten().as_deref(), order));
        }
        Changes {
            last_lsn: self.last_lsn(),
            warehouses: warehouses.iter().map(|id| self.state.warehouses[id].clone()).collect(),
            inventory: pairs.into_iter().map(|p| self.pair_row(p)).collect(),
            orders,
        }
    }

    /// The whole state as changes: every warehouse, pair and order, each entirely new. What a
    /// rebuild writes into empty tables, and what the projector upserts when its position is
    /// behind what the log still holds.
    pub fn everything(&self) -> Changes {
        let mut pairs: Vec<_> = self.state.inventory.keys().cloned().collect();
        pairs.sort();
        let mut ids: Vec<_> = self.state.orders.keys().copied().collect();
        ids.sort();
        Changes {
            last_lsn: self.last_lsn(),
            warehouses: self.state.warehouses.values().cloned().collect(),
            inventory: pairs.into_iter().map(|p| self.pair_row(p)).collect(),
            orders: ids
                .into_iter()
                .map(|id| diff(None, self.state.orders[&id].clone()))
                .collect(),
        }
    }

    fn pair_row(&self, (sku, warehouse_id): (Sku, WarehouseId)) -> PairRow {
        let inv = self.state.inventory.get(&(sku.clone(), warehouse_id.clone()));
        PairRow {
            on_hand: inv.map_or(0, |i| i.on_hand()),
            reserved: inv.map_or(0, |i| i.reserved()),
            sku,
            warehouse_id,
        }
    }
}

/// Every pair an order's events can move stock at: its allocations, and the warehouses its
/// received returns went back to. Over-approximates (a payment moves none): an unchanged row
/// upserted again costs a little and changes nothing.
fn stock_pairs(order: &Order, pairs: &mut BTreeSet<(Sku, WarehouseId)>) {
    for (sku, wh, _) in placement_effects(order) {
        pairs.insert((sku, wh));
    }
    for r in &order.returns {
        if let crate::domain::order::ReturnStatus::Received { warehouse_id, .. } = &r.status {
            for l in &r.items {
                pairs.insert((l.sku.clone(), warehouse_id.clone()));
            }
        }
    }
}

/// What differs between an order before a batch (`None`: placed in it) and after.
fn diff(old: Option<&Order>, order: Arc<Order>) -> OrderChange {
    fn changed<T: PartialEq>(old: &[T], new: &[T]) -> Vec<usize> {
        (0..new.len()).filter(|&i| old.get(i) != Some(&new[i])).collect()
    }
    fn added<T>(old: &[T], new: &[T]) -> Vec<usize> {
        (old.len()..new.len()).collect()
    }
    let Some(base) = old else {
        return whole(order);
    };
    OrderChange {
        placed: false,
        history_from: base.history.len(),
        attempts: changed(&base.payment.attempts, &order.payment.attempts),
        shipments: changed(&base.shipments, &order.shipments),
        new_shipments: added(&base.shipments, &order.shipments),
        returns: changed(&base.returns, &order.returns),
        new_returns: added(&base.returns, &order.returns),
        refunds: changed(&base.refunds, &order.refunds),
        order,
    }
}

/// An order entirely new to the read model: every part of it is written.
fn whole(order: Arc<Order>) -> OrderChange {
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    OrderChange {
        placed: true,
        history_from: 0,
        attempts: all(order.payment.attempts.len()),
        shipments: all(order.shipments.len()),
        new_shipments: all(order.shipments.len()),
        returns: all(order.returns.len()),
        new_returns: all(order.returns.len()),
        refunds: all(order.refunds.len()),
        order,
    }
}
