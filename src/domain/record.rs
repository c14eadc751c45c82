//! What the log stores: one [`Record`] per command, its [`Entry`] and, optionally, the
//! idempotent response it produced.
//!
//! Architecture invariant: these types are the log's format. postcard is positional, so a
//! field or variant is never renamed into another position, removed or reordered; a new
//! variant goes at the end (the bytes are pinned in `codec` tests).

use super::Millis;
use super::ids::{OrderId, SaleId, Sku, WarehouseId};
use super::order::{Order, OrderEvent, StatusChange};
use super::sale::{Sale, SaleMark};
use super::warehouse::Warehouse;
use serde::{Deserialize, Serialize};

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
    /// A flash sale created or changed (`PUT /v1/sales/{id}`).
    SaleUpserted {
        sale: Sale,
    },
    /// What the engine recorded about a sale: started or ended (by its clock), sold out.
    SaleMarked {
        sale_id: SaleId,
        mark: SaleMark,
        at: Millis,
    },
    /// A placement, as `OrderPlaced`, of an order that counts toward the named sales: its
    /// units of each sale's SKU are held by its customer until the order is cancelled.
    OrderPlacedInSale {
        order: std::sync::Arc<Order>,
        sales: Vec<SaleId>,
    },
}

impl Entry {
    /// The order a placement record placed (`OrderPlaced` or `OrderPlacedInSale`).
    pub fn placed_order(&self) -> Option<&std::sync::Arc<Order>> {
        match self {
            Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => Some(order),
            _ => None,
        }
    }
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
