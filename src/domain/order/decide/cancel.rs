//! Ending an order before anything shipped: cancelled by the client (refunding first what
//! was captured) or expired by the system when its reservation lapsed unpaid.

use super::invalid;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::limits;
use crate::domain::order::parts::{Refund, RefundStatus};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{Millis, Rejection};
use rust_decimal::Decimal;

impl Order {
    /// `Cancel`: cancelled at once if nothing was captured, else a refund of everything
    /// refundable first (the order is cancelled when that refund succeeds).
    pub(super) fn decide_cancel(&self, reason: &str, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderStatus as S;
        let st = self.status;
        let mut errs = Vec::new();
        limits::text("reason", reason, &mut errs);
        limits::finish(errs)?;
        let cancellable = matches!(st, S::Pending | S::PaymentPending | S::Confirmed | S::Processing);
        if !cancellable || self.any_shipped() {
            return Err(invalid(
                st,
                "cancel",
                "only orders with nothing shipped can be cancelled",
            ));
        }
        if self.pending_attempt().is_some() {
            return Err(invalid(st, "cancel", "a payment attempt is in progress"));
        }
        if self.pending_refund().is_some() {
            return Err(invalid(st, "cancel", "a cancellation refund is in progress"));
        }
        let refundable = self.refundable();
        if refundable > Decimal::ZERO {
            // Money first: the order is cancelled once the refund is confirmed.
            let idx = self.refunds.len();
            return Ok(vec![OrderEvent::RefundRequested {
                refund: Refund {
                    amount: refundable,
                    return_idx: None,
                    reason: reason.to_string(),
                    gateway_key: format!("{}-refund-{}", self.id, idx + 1),
                    for_cancel: true,
                    status: RefundStatus::Pending,
                    created_at: now,
                },
            }]);
        }
        Ok(vec![OrderEvent::Cancelled {
            reason: reason.to_string(),
            actor: "api".into(),
            at: now,
        }])
    }

    /// `Expire`: an unpaid order whose reservation lapsed is cancelled by the system.
    pub(super) fn decide_expire(&self, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        let st = self.status;
        if st != OrderStatus::PaymentPending {
            return Err(invalid(st, "expire", "only an unpaid payment_pending order expires"));
        }
        if self.pending_attempt().is_some() {
            return Err(invalid(st, "expire", "a payment attempt is in progress"));
        }
        if now < self.reservation_expires_at {
            return Err(invalid(st, "expire", "the reservation has not expired yet"));
        }
        Ok(vec![OrderEvent::Cancelled {
            reason: format!("reservation expired at {}", self.reservation_expires_at.rfc3339()),
            actor: "system".into(),
            at: now,
        }])
    }
}
