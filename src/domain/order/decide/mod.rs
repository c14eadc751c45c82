//! `Order::decide`: one function per command, each in the file of its concern. A decision
//! reads the order and the command, never a clock (`now` is an argument), and returns the
//! events to log or the rejection; it changes nothing.

mod cancel;
mod edit;
mod fulfillment;
mod partial;
mod payment;
mod refunds;
mod returns;

use super::Order;
use super::command::OrderCommand;
use super::event::OrderEvent;
use super::status::OrderStatus;
use crate::domain::{Millis, Rejection};

impl Order {
    /// Decides `cmd` against this order at time `now`.
    pub fn decide(&self, cmd: &OrderCommand, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderCommand as C;
        match cmd {
            C::StartPayment { token } => self.decide_start_payment(token, now),
            C::RecordPaymentOutcome { attempt_idx, outcome } => self.decide_payment_outcome(*attempt_idx, outcome, now),
            C::Cancel { reason } => self.decide_cancel(reason, now),
            C::Expire => self.decide_expire(now),
            C::StartFulfillment { carriers, items } => self.decide_start_fulfillment(carriers, items.as_deref(), now),
            C::Ship {
                shipment_id,
                carrier,
                tracking_number,
            } => self.decide_ship(shipment_id, carrier.as_deref(), tracking_number.as_deref(), now),
            C::Deliver { shipment_id } => self.decide_deliver(shipment_id, now),
            C::RequestReturn { items, reason } => self.decide_request_return(items, reason, now),
            C::ApproveReturn { return_id } => self.decide_approve_return(return_id, now),
            C::RejectReturn { return_id, reason } => self.decide_reject_return(return_id, reason, now),
            C::ReceiveReturn {
                return_id,
                warehouse_id,
                restock,
            } => self.decide_receive_return(return_id, warehouse_id, *restock, now),
            C::RequestRefund {
                amount,
                return_id,
                reason,
            } => self.decide_request_refund(*amount, return_id.as_deref(), reason, now),
            C::RecordRefundOutcome { refund_idx, outcome } => self.decide_refund_outcome(*refund_idx, outcome, now),
            C::Edit { edit, actor } => self.decide_edit(edit, actor, now),
            C::CancelItems { items, reason } => self.decide_cancel_items(items, reason, now),
        }
    }
}

/// The rejection of a command the order's state does not allow.
fn invalid(from: OrderStatus, action: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection::InvalidTransition {
        from,
        action,
        detail: detail.into(),
    }
}
