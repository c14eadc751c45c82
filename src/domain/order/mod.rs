//! The order: its state, the commands it accepts, the events it records, and the pure
//! `decide`/`apply` pair. One order actor owns one `Order`.
//!
//! Where things are:
//! - `status.rs`, `parts.rs`: the order's status and the parts it is made of (log format);
//! - `limits.rs`: every bound on an order and the field checks that enforce them;
//! - `new_order.rs`: a placement request, its validation, the order it becomes;
//! - `command.rs`, `event.rs`: what an order is asked to do and what it records;
//! - `decide/`: one function per command, grouped by concern (payment, fulfillment,
//!   returns, refunds); `apply.rs`: the fold of events; `effects.rs`: the stock they move.
//!
//! Architecture invariants:
//! - `apply` never fails and reads no clock: every time it stores comes from the event.
//! - A terminal order (`cancelled`, `refunded`) takes no further event.
//! - `refunded <= captured <= authorized` on the payment record, always.
//! - Every status change appends exactly one entry to `history`.
//! - The stock an event moves is computed by [`inventory_effects`] from the order as it was before
//!   the event, the same function during live running and during replay.

mod apply;
mod command;
mod decide;
mod effects;
mod event;
mod extras;
pub mod limits;
mod new_order;
mod parts;
mod status;
#[cfg(test)]
mod tests;
mod units;

pub use apply::apply_order_events;
pub use command::{GatewayOutcome, OrderCommand, OrderEdit};
pub use effects::{inventory_effects, placement_effects};
pub use event::{OrderChange, OrderEvent, StatusChange};
pub use extras::{CancelledLine, Extras, OrderAttr, OrderExtras};
pub use limits::{
    LINES_MAX, PAYMENT_ATTEMPTS_MAX, QUANTITY_MAX, REFUNDS_MAX, RESERVATION_TTL_MS_DEFAULT, RESERVATION_TTL_MS_MAX,
    RETURNS_MAX, TEXT_LEN_MAX, TOKEN_LEN_MAX,
};
pub use new_order::{NewLine, NewOrder};
pub use parts::{
    Address, Allocation, AttemptStatus, LineQty, OrderItem, Payment, PaymentAttempt, Refund, RefundStatus, Return,
    ReturnStatus, Shipment, ShipmentStatus, Text, Transition, text,
};
pub use status::OrderStatus;
pub use units::OpenUnits;

use crate::domain::ids::{OrderId, Sku, UserId, child_id, parse_child_id};
use crate::domain::money::{Amount, Currency};
use crate::domain::{Millis, Rejection};
use serde::{Deserialize, Serialize};

/// Serialized field by field in this order (postcard): part of every `OrderPlaced` record and
/// every snapshot; `extras` are written apart (record version 2, snapshot format 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub currency: Currency,
    pub items: Vec<OrderItem>,
    pub subtotal_amount: Amount,
    pub tax_amount: Amount,
    pub shipping_amount: Amount,
    pub discount_amount: Amount,
    pub total_amount: Amount,
    pub shipping_address: Address,
    /// Boxed: most orders have none, and an inline `Address` is ~270 bytes of every order.
    pub billing_address: Option<Box<Address>>,
    pub status: OrderStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub reservation_expires_at: Millis,
    pub payment: Payment,
    pub shipments: Vec<Shipment>,
    pub returns: Vec<Return>,
    pub refunds: Vec<Refund>,
    pub history: Vec<Transition>,
    /// Fields added after log format version 1 (email, note, tags, metadata). Not part of the
    /// version-1 layout above: the codec writes them after the record or snapshot that holds
    /// the order (record version 2, snapshot format 3, see `extras.rs` and `codec.rs`), so the
    /// bytes of an order without extras are exactly what version 1 wrote.
    #[serde(skip)]
    pub extras: Extras,
}

impl Order {
    pub fn shipment_id(&self, idx: usize) -> String {
        child_id("SHP", self.id, idx)
    }
    pub fn return_id(&self, idx: usize) -> String {
        child_id("RET", self.id, idx)
    }
    pub fn refund_id(&self, idx: usize) -> String {
        child_id("REF", self.id, idx)
    }
    pub fn shipment_idx(&self, id: &str) -> Option<usize> {
        parse_child_id("SHP", self.id, id).filter(|i| *i < self.shipments.len())
    }
    pub fn return_idx(&self, id: &str) -> Option<usize> {
        parse_child_id("RET", self.id, id).filter(|i| *i < self.returns.len())
    }

    /// The shipment named `id` (`SHP-…`), or "not found".
    pub fn find_shipment(&self, id: &str) -> Result<usize, Rejection> {
        self.shipment_idx(id)
            .ok_or_else(|| Rejection::NotFound(format!("shipment {id}")))
    }

    /// The return named `id` (`RET-…`), or "not found".
    pub fn find_return(&self, id: &str) -> Result<usize, Rejection> {
        self.return_idx(id)
            .ok_or_else(|| Rejection::NotFound(format!("return {id}")))
    }

    /// The payment attempt whose outcome is not logged yet, if any (at most one).
    pub fn pending_attempt(&self) -> Option<usize> {
        self.payment
            .attempts
            .iter()
            .position(|a| a.status == AttemptStatus::Pending)
    }

    /// The refund whose outcome is not logged yet, if any (at most one).
    pub fn pending_refund(&self) -> Option<usize> {
        self.refunds.iter().position(|r| r.status == RefundStatus::Pending)
    }

    /// Money that can still be refunded: captured minus refunded minus refunds in flight.
    pub fn refundable(&self) -> Amount {
        let in_flight: Amount = self
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Pending)
            .map(|r| r.amount)
            .sum();
        self.payment.captured - self.payment.refunded - in_flight
    }

    fn delivered_qty(&self, sku: &Sku) -> u64 {
        self.shipments
            .iter()
            .filter(|s| s.status == ShipmentStatus::Delivered)
            .flat_map(|s| s.items.iter())
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum()
    }

    /// Units of `sku` in returns that were not rejected.
    fn returned_qty(&self, sku: &Sku) -> u64 {
        self.returns
            .iter()
            .filter(|r| !matches!(r.status, ReturnStatus::Rejected { .. }))
            .flat_map(|r| r.items.iter())
            .filter(|l| &l.sku == sku)
            .map(|l| l.quantity)
            .sum()
    }

    fn any_shipped(&self) -> bool {
        self.shipments.iter().any(|s| s.status != ShipmentStatus::Pending)
    }
}
