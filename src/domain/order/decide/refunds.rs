//! Refunds from confirmation on (before delivery they are goodwill refunds and change no
//! status; see `apply`): the intent (logged before the gateway hears of it, with the key
//! `ORD-…-refund-N`) and its outcome. A cancellation's refund ends in the cancellation.

use super::invalid;
use crate::domain::money::Amount;
use crate::domain::order::command::GatewayOutcome;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::limits::{self, REFUNDS_MAX, money_error};
use crate::domain::order::parts::{Refund, RefundStatus, ReturnStatus};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{FieldError, Millis, Rejection};
use rust_decimal::Decimal;

impl Order {
    /// `RequestRefund`: at most what is refundable, optionally for an approved or received
    /// return named `return_id`.
    pub(super) fn decide_request_refund(
        &self,
        amount: Amount,
        return_id: Option<&str>,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderStatus as S;
        let return_idx = return_id.map(|id| self.find_return(id)).transpose()?;
        let st = self.status;
        if matches!(st, S::Pending | S::PaymentPending) || st.is_terminal() {
            return Err(invalid(st, "refund", "refunds are made once the order is confirmed"));
        }
        if self.pending_refund().is_some() {
            return Err(invalid(st, "refund", "another refund is in progress"));
        }
        if self.refunds.len() >= REFUNDS_MAX {
            return Err(invalid(st, "refund", "too many refunds"));
        }
        let mut errs = Vec::new();
        limits::text("reason", reason, &mut errs);
        let refundable = self.refundable();
        if amount <= Decimal::ZERO || !self.currency.accepts(amount) {
            errs.push(money_error("amount".into(), self.currency));
        } else if amount > refundable {
            errs.push(FieldError::new(
                "amount",
                format!("exceeds the refundable {}", self.currency.render(refundable)),
            ));
        }
        if let Some(r) = return_idx
            && !matches!(
                self.returns[r].status,
                ReturnStatus::Approved | ReturnStatus::Received { .. }
            )
        {
            errs.push(FieldError::new("return_id", "the return must be approved or received"));
        }
        limits::finish(errs)?;
        Ok(vec![OrderEvent::RefundRequested {
            refund: Refund {
                amount,
                return_idx,
                reason: reason.to_string(),
                gateway_key: format!("{}-refund-{}", self.id, self.refunds.len() + 1),
                for_cancel: false,
                status: RefundStatus::Pending,
                created_at: now,
            },
        }])
    }

    /// `RecordRefundOutcome`: closes the pending refund `refund_idx` as the gateway said; a
    /// cancellation's refund that succeeded cancels the order too.
    pub(super) fn decide_refund_outcome(
        &self,
        refund_idx: usize,
        outcome: &GatewayOutcome,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        if self.pending_refund() != Some(refund_idx) {
            return Err(invalid(self.status, "record_refund", "no such refund in progress"));
        }
        match outcome {
            GatewayOutcome::Approved { reference } => {
                let mut events = vec![OrderEvent::RefundSucceeded {
                    refund_idx,
                    gateway_ref: reference.clone(),
                    at: now,
                }];
                let r = &self.refunds[refund_idx];
                if r.for_cancel {
                    events.push(OrderEvent::Cancelled {
                        reason: r.reason.clone(),
                        actor: "api".into(),
                        at: now,
                    });
                }
                Ok(events)
            }
            GatewayOutcome::Declined { reason } | GatewayOutcome::Failed { reason } => {
                Ok(vec![OrderEvent::RefundFailed {
                    refund_idx,
                    reason: reason.clone(),
                    at: now,
                }])
            }
        }
    }
}
