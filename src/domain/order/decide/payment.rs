//! Paying: the intent of a payment attempt (logged before the gateway hears of it) and its
//! outcome (logged when the gateway told it).

use super::invalid;
use crate::domain::Millis;
use crate::domain::Rejection;
use crate::domain::order::command::GatewayOutcome;
use crate::domain::order::event::OrderEvent;
use crate::domain::order::limits::{self, PAYMENT_ATTEMPTS_MAX};
use crate::domain::order::parts::{AttemptStatus, PaymentAttempt};
use crate::domain::order::{Order, OrderStatus};

impl Order {
    /// `StartPayment`: opens attempt N with the gateway key `ORD-…-pay-N`.
    pub(super) fn decide_start_payment(&self, token: &str, now: Millis) -> Result<Vec<OrderEvent>, Rejection> {
        let st = self.status;
        if st != OrderStatus::PaymentPending {
            return Err(invalid(st, "pay", "only a payment_pending order can be paid"));
        }
        if self.pending_attempt().is_some() {
            return Err(invalid(st, "pay", "a payment attempt is already in progress"));
        }
        if self.payment.attempts.len() >= PAYMENT_ATTEMPTS_MAX {
            return Err(invalid(st, "pay", "too many payment attempts"));
        }
        let mut errs = Vec::new();
        limits::token(token, &mut errs);
        limits::finish(errs)?;
        let idx = self.payment.attempts.len();
        let hint: String = token
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Ok(vec![OrderEvent::PaymentAttempted {
            attempt: PaymentAttempt {
                amount: self.amount_due(),
                gateway_key: format!("{}-pay-{}", self.id, idx + 1),
                token_hint: hint,
                status: AttemptStatus::Pending,
                at: now,
            },
        }])
    }

    /// `RecordPaymentOutcome`: closes the pending attempt `attempt_idx` as the gateway said.
    pub(super) fn decide_payment_outcome(
        &self,
        attempt_idx: usize,
        outcome: &GatewayOutcome,
        now: Millis,
    ) -> Result<Vec<OrderEvent>, Rejection> {
        if self.pending_attempt() != Some(attempt_idx) {
            return Err(invalid(
                self.status,
                "record_payment",
                "no such payment attempt in progress",
            ));
        }
        let event = match outcome {
            GatewayOutcome::Approved { reference } => OrderEvent::PaymentCaptured {
                attempt_idx,
                authorization_id: reference.clone(),
                at: now,
            },
            GatewayOutcome::Declined { reason } => OrderEvent::PaymentDeclined {
                attempt_idx,
                reason: reason.clone(),
                at: now,
            },
            GatewayOutcome::Failed { reason } => OrderEvent::PaymentFailed {
                attempt_idx,
                reason: reason.clone(),
                at: now,
            },
        };
        Ok(vec![event])
    }
}
