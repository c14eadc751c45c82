//! The parts an order is made of: its lines and their allocations, addresses, the payment
//! record and its attempts, shipments, returns, refunds and the status history. All of them
//! are part of the log format (postcard, positional): fields are never reordered or renamed
//! into another position, and new enum variants go at the end.

use super::status::OrderStatus;
use crate::domain::Millis;
use crate::domain::ids::{Sku, WarehouseId};
use crate::domain::money::Amount;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A postal address. Coordinates, when given, let placement prefer the nearest warehouse.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub name: Option<String>,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub phone: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub warehouse_id: WarehouseId,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: Sku,
    pub quantity: u64,
    pub unit_price: Amount,
    /// Discount on the whole line (not per unit).
    pub discount: Amount,
    pub allocations: Vec<Allocation>,
}

impl OrderItem {
    pub fn line_total(&self) -> Amount {
        Decimal::from(self.quantity) * self.unit_price - self.discount
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    #[serde(deserialize_with = "de_text")]
    pub reason: Text,
    pub metadata: BTreeMap<String, String>,
    /// Who caused it: `api`, `system` (expiry), `gateway`.
    #[serde(deserialize_with = "de_text")]
    pub actor: Text,
    pub at: Millis,
}

/// Text of a history entry. The reasons and actors the engine writes itself are static strings
/// shared by every order (no allocation, live or replayed: see [`text`]); a client's own reason
/// is owned. Encoded as a plain string, the same bytes as the `String` it replaced.
pub type Text = Cow<'static, str>;

/// Every reason and actor the engine itself writes into a history entry.
const KNOWN_TEXTS: &[&str] = &[
    "api",
    "system",
    "gateway",
    "order created",
    "inventory reserved",
    "payment captured",
    "payment declined",
    "fulfillment started",
    "shipment shipped",
    "all shipments delivered",
    "return approved",
    "refund succeeded",
    "cancelled by the client",
    "order edited",
    "the remaining units were cancelled",
];

/// `s` as history text: the shared static copy if the engine writes it itself, else owned.
pub fn text(s: &str) -> Text {
    match KNOWN_TEXTS.iter().find(|k| **k == s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s.to_owned()),
    }
}

/// Decodes history text through [`text`], so a replayed order shares the static strings too.
fn de_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Text;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
            Ok(text(s))
        }
    }
    deserializer.deserialize_str(Visitor)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttemptStatus {
    Pending,
    Captured {
        authorization_id: String,
    },
    Declined {
        reason: String,
    },
    /// The gateway failed without a decision we could trust (timeout resolved as not charged,
    /// outage): the order stays payable.
    Failed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentAttempt {
    pub amount: Amount,
    /// Idempotency key sent to the gateway: derived from the order and attempt index.
    pub gateway_key: String,
    /// Last four characters of the token, for display; the token itself is not stored.
    pub token_hint: String,
    pub status: AttemptStatus,
    pub at: Millis,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub authorized: Amount,
    pub captured: Amount,
    pub refunded: Amount,
    pub attempts: Vec<PaymentAttempt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipmentStatus {
    Pending,
    Shipped,
    Delivered,
}

impl ShipmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Pending => "pending",
            ShipmentStatus::Shipped => "shipped",
            ShipmentStatus::Delivered => "delivered",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineQty {
    pub sku: Sku,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub warehouse_id: WarehouseId,
    pub items: Vec<LineQty>,
    pub carrier: String,
    pub tracking_number: Option<String>,
    pub status: ShipmentStatus,
    pub created_at: Millis,
    pub shipped_at: Option<Millis>,
    pub delivered_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReturnStatus {
    Requested,
    Approved,
    Rejected { reason: String },
    Received { warehouse_id: WarehouseId, restock: bool },
}

impl ReturnStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected { .. } => "rejected",
            ReturnStatus::Received { .. } => "received",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Return {
    pub items: Vec<LineQty>,
    pub reason: String,
    pub status: ReturnStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RefundStatus {
    Pending,
    Succeeded { gateway_ref: String },
    Failed { reason: String },
}

impl RefundStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded { .. } => "succeeded",
            RefundStatus::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub amount: Amount,
    pub return_idx: Option<usize>,
    pub reason: String,
    pub gateway_key: String,
    /// Part of a cancellation: on success the order becomes `cancelled`, not `*refunded`.
    pub for_cancel: bool,
    pub status: RefundStatus,
    pub created_at: Millis,
}
