//! What happened to an order: the events `decide` returns and `apply` folds, as the log
//! stores them (postcard, positional: new variants go at the end, fields keep their places).

use super::extras::CancelledLine;
use super::parts::{Address, PaymentAttempt, Refund, Return, Shipment};
use super::status::OrderStatus;
use crate::domain::Millis;
use crate::domain::ids::WarehouseId;
use crate::domain::money::Amount;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    PaymentAttempted {
        attempt: PaymentAttempt,
    },
    PaymentCaptured {
        attempt_idx: usize,
        authorization_id: String,
        at: Millis,
    },
    PaymentDeclined {
        attempt_idx: usize,
        reason: String,
        at: Millis,
    },
    PaymentFailed {
        attempt_idx: usize,
        reason: String,
        at: Millis,
    },
    Cancelled {
        reason: String,
        actor: String,
        at: Millis,
    },
    FulfillmentStarted {
        shipments: Vec<Shipment>,
        at: Millis,
    },
    ShipmentShipped {
        shipment_idx: usize,
        carrier: String,
        tracking_number: String,
        at: Millis,
    },
    ShipmentDelivered {
        shipment_idx: usize,
        at: Millis,
    },
    ReturnRequested {
        ret: Return,
    },
    ReturnApproved {
        return_idx: usize,
        at: Millis,
    },
    ReturnRejected {
        return_idx: usize,
        reason: String,
        at: Millis,
    },
    ReturnReceived {
        return_idx: usize,
        warehouse_id: WarehouseId,
        restock: bool,
        at: Millis,
    },
    RefundRequested {
        refund: Refund,
    },
    RefundSucceeded {
        refund_idx: usize,
        gateway_ref: String,
        at: Millis,
    },
    RefundFailed {
        refund_idx: usize,
        reason: String,
        at: Millis,
    },
    /// Note, tags, metadata or shipping address changed; `actor` is who asked (history).
    Edited {
        changes: Vec<OrderChange>,
        actor: String,
        at: Millis,
    },
    /// Open units cancelled (their reservations released), worth `amount`; `refund_idx` is the
    /// refund of the same record that pays back what of it was captured, if any.
    ItemsCancelled {
        lines: Vec<CancelledLine>,
        amount: Amount,
        refund_idx: Option<usize>,
        reason: String,
        actor: String,
        at: Millis,
    },
    /// More shipments, for open units of an order whose fulfilment has started.
    ShipmentsCreated {
        shipments: Vec<Shipment>,
        at: Millis,
    },
}

/// One field an edit set, to its new value. Log format: new variants go at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderChange {
    Note(Option<String>),
    Tags(Vec<String>),
    Metadata(BTreeMap<String, String>),
    ShippingAddress(Address),
}

impl OrderChange {
    /// The field's name as clients know it.
    pub fn field(&self) -> &'static str {
        match self {
            OrderChange::Note(_) => "note",
            OrderChange::Tags(_) => "tags",
            OrderChange::Metadata(_) => "metadata",
            OrderChange::ShippingAddress(_) => "shipping_address",
        }
    }
}

impl OrderEvent {
    pub fn at(&self) -> Millis {
        match self {
            OrderEvent::PaymentAttempted { attempt } => attempt.at,
            OrderEvent::ReturnRequested { ret } => ret.created_at,
            OrderEvent::RefundRequested { refund } => refund.created_at,
            OrderEvent::PaymentCaptured { at, .. }
            | OrderEvent::PaymentDeclined { at, .. }
            | OrderEvent::PaymentFailed { at, .. }
            | OrderEvent::Cancelled { at, .. }
            | OrderEvent::FulfillmentStarted { at, .. }
            | OrderEvent::ShipmentShipped { at, .. }
            | OrderEvent::ShipmentDelivered { at, .. }
            | OrderEvent::ReturnApproved { at, .. }
            | OrderEvent::ReturnRejected { at, .. }
            | OrderEvent::ReturnReceived { at, .. }
            | OrderEvent::RefundSucceeded { at, .. }
            | OrderEvent::RefundFailed { at, .. }
            | OrderEvent::Edited { at, .. }
            | OrderEvent::ItemsCancelled { at, .. }
            | OrderEvent::ShipmentsCreated { at, .. } => *at,
        }
    }
}

/// A status change caused by a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub reason: String,
}
