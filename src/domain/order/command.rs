//! The commands an existing order accepts. Not serialized: the log stores the events a
//! command decided, never the command.
//!
//! Commands name the order's parts by the ids clients see (`SHP-…`, `RET-…`); `decide`
//! resolves them and answers "not found" itself. Only the outcome commands, which the engine
//! issues for the attempt or refund it has just opened, carry positions.

use super::parts::{Address, LineQty};
use crate::domain::ids::WarehouseId;
use crate::domain::money::Amount;
use std::collections::BTreeMap;

/// A command to an existing order. Commands that talk to the payment gateway are split in two:
/// the intent (decided and logged before the call) and the outcome (decided after it).
#[derive(Clone, Debug, PartialEq)]
pub enum OrderCommand {
    StartPayment {
        token: String,
    },
    RecordPaymentOutcome {
        attempt_idx: usize,
        outcome: GatewayOutcome,
    },
    Cancel {
        reason: String,
    },
    Expire,
    /// Shipments for the open units (all of them, or `items`), one per warehouse.
    StartFulfillment {
        carriers: BTreeMap<WarehouseId, String>,
        items: Option<Vec<LineQty>>,
    },
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
    RequestRefund {
        amount: Amount,
        return_id: Option<String>,
        reason: String,
    },
    RecordRefundOutcome {
        refund_idx: usize,
        outcome: GatewayOutcome,
    },
    /// Cancel some open units (in no shipment); the rest of the order goes on.
    CancelItems {
        items: Vec<LineQty>,
        reason: String,
    },
    /// Edit the order's note, tags, metadata or shipping address; `actor` names who asked.
    Edit {
        /// Boxed: the largest command by far, and rare.
        edit: Box<OrderEdit>,
        actor: String,
    },
}

/// What an edit asks to change; an absent part stays as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderEdit {
    /// `Some(None)` removes the note.
    pub note: Option<Option<String>>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// Merged into the metadata (JSON merge patch): a value sets its key, `None` removes it.
    pub metadata: BTreeMap<String, Option<String>>,
    /// Replaces the shipping address (only before anything shipped).
    pub shipping_address: Option<Address>,
}

/// What the gateway said.
#[derive(Clone, Debug, PartialEq)]
pub enum GatewayOutcome {
    Approved { reference: String },
    Declined { reason: String },
    Failed { reason: String },
}
