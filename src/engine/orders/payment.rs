//! The payment-outcome protocol, as the order actor carries it out (ARCHITECTURE.md,
//! "Payments and refunds", gives the argument; this follows it step by step).
//!
//! 1. Intent first: `PaymentAttempted` / `RefundRequested` is durable before the gateway hears
//!    of it, under a gateway key derived from the order (`ORD-…-pay-N`, `ORD-…-refund-N`).
//! 2. An outcome is logged only when the gateway told it: captured, declined, refunded. An
//!    error, a timeout or a lost answer leaves the attempt or refund `pending` and the request
//!    gets [`EngineError::OutcomeUnknown`] (503).
//! 3. A pending attempt is closed as `failed` only when a `lookup` says the gateway has no
//!    charge for its key (or a void of it was confirmed); otherwise it is finished with the
//!    same key (capture is idempotent by key). A pending refund is finished from its lookup,
//!    or sent again with the same key if the gateway never got it.
//! 4. Whoever meets a pending attempt or refund settles it before anything else: a retried
//!    payment, cancel or refund (answered from the settled outcome), expiry (which never
//!    releases stock while the outcome is unknown), the background settler. No request opens a
//!    new attempt while one is pending, so no second gateway key can charge the order twice.
//!
//! A retry recognizes the attempt or refund its first try opened by the request's
//! `Idempotency-Key`: the intent's record carries, in its idempotency slot, a marker naming
//! what it opened ([`Opened`]) instead of a response. The outcome's record replaces it with the
//! response. If someone else logged the outcome (the settler, a restart), the retry finds the
//! marker and answers from the attempt or refund, so it replays 200 or 402 instead of 409.

use super::{OrderActor, OrderOutcome, RefundAsk};
use crate::domain::order::{AttemptStatus, GatewayOutcome, LineQty, Refund, RefundStatus};
use crate::domain::{IdempotencyRecord, Millis, OrderCommand, OrderEvent, OrderStatus};
use crate::engine::error::{EngineError, GatewayCall, OutcomeUnknown, Unavailable, UnknownCause};
use crate::engine::gateway::{GatewayError, GatewayRecord};
use crate::engine::idempotency::IdemSpec;
use rust_decimal::Decimal;
use std::time::Duration;

type Idem = Option<IdemSpec<OrderOutcome>>;

/// What an idempotent request opened: recorded as a marker in the idempotency slot of the
/// intent's record, so the request's retry recognizes its own attempt or refund after someone
/// else settled it. Stored with status [`Opened::MARKER_STATUS`] (no HTTP status is 0) and the
/// body `attempt:<index>` or `refund:<index>`; a marker is never replayed as a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    Attempt(usize),
    Refund(usize),
}

impl Opened {
    fn marker(self, spec: &IdemSpec<OrderOutcome>, at: Millis) -> IdempotencyRecord {
        let body = match self {
            Opened::Attempt(i) => format!("attempt:{i}"),
            Opened::Refund(i) => format!("refund:{i}"),
        };
        spec.marker(body.into_bytes(), at)
    }

    fn parse(body: &[u8]) -> Option<Opened> {
        let text = std::str::from_utf8(body).ok()?;
        let (kind, idx) = text.split_once(':')?;
        let idx = idx.parse().ok()?;
        match kind {
            "attempt" => Some(Opened::Attempt(idx)),
            "refund" => Some(Opened::Refund(idx)),
            _ => None,
        }
    }
}

/// The outcome of `call` is unknown, because of `cause`.
fn unknown(call: GatewayCall, cause: UnknownCause) -> EngineError {
    OutcomeUnknown { call, cause }.into()
}

/// The outcome of `call` is unknown: the gateway failed or did not answer.
fn lost(call: GatewayCall) -> impl FnOnce(GatewayError) -> EngineError {
    move |e| unknown(call, UnknownCause::Gateway(e))
}

impl OrderActor {
    async fn gateway<T>(
        &self,
        call: futures::future::BoxFuture<'static, Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let limit = Duration::from_millis(self.core.config.gateway_timeout_ms);
        match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Unavailable("timed out".into())),
        }
    }

    /// What the request `idem` opened on its first try, if this is its retry.
    fn opened_by(&self, idem: &Idem) -> Option<Opened> {
        let body = self.core.idempotency.marker_of(idem.as_ref()?)?;
        let opened = Opened::parse(&body)?;
        let exists = match opened {
            Opened::Attempt(i) => i < self.order.payment.attempts.len(),
            Opened::Refund(i) => i < self.order.refunds.len(),
        };
        exists.then_some(opened)
    }

    /// Answers a retry from the settled outcome of what it opened, storing the answer (a record
    /// with no events) so later retries replay it.
    async fn answer(
        &mut self,
        idem: Idem,
        created: Option<String>,
        declined: Option<String>,
    ) -> Result<OrderOutcome, EngineError> {
        self.commit(Vec::new(), idem, created, declined).await
    }

    /// `POST /payments`: settle what is pending, else open a new attempt and charge it.
    pub(super) async fn pay(&mut self, token: String, idem: Idem) -> Result<OrderOutcome, EngineError> {
        if let Some(Opened::Attempt(i)) = self.opened_by(&idem) {
            match &self.order.payment.attempts[i].status {
                AttemptStatus::Captured { .. } => return self.answer(idem, None, None).await,
                AttemptStatus::Declined { reason } => {
                    let reason = reason.clone();
                    return self.answer(idem, None, Some(reason)).await;
                }
                // Pending: settled below. Failed: nothing was charged, this request pays anew.
                AttemptStatus::Pending | AttemptStatus::Failed { .. } => {}
            }
        }
        if let Some(i) = self.order.pending_attempt() {
            // An attempt whose outcome is unknown is settled first; if it went through or was
            // declined, that is the answer to this request too.
            let outcome = self.settle_attempt(i).await?;
            if !matches!(outcome, GatewayOutcome::Failed { .. }) {
                return self.log_payment(i, outcome, idem).await;
            }
            self.log_payment(i, outcome, None).await?;
        }
        let now = self.core.clock.now();
        let events = self
            .order
            .decide(&OrderCommand::StartPayment { token: token.clone() }, now)?;
        let idx = self.order.payment.attempts.len();
        let marker = idem.as_ref().map(|spec| Opened::Attempt(idx).marker(spec, now));
        self.commit_with(events, None, None, |_, _| marker).await?;
        let outcome = self.charge(idx, token).await?;
        if let GatewayOutcome::Failed { reason } = &outcome {
            let reason = reason.clone();
            self.log_payment(idx, outcome, None).await?;
            return Err(Unavailable::PaymentFailed { reason }.into());
        }
        self.log_payment(idx, outcome, idem).await
    }

    /// Authorizes and captures attempt `idx` (its intent is durable).
    async fn charge(&self, idx: usize, token: String) -> Result<GatewayOutcome, EngineError> {
        let a = &self.order.payment.attempts[idx];
        let authorized = self
            .gateway(
                self.core
                    .gateway
                    .authorize(a.gateway_key.clone(), token, a.amount, self.order.currency),
            )
            .await;
        match authorized {
            Ok(auth_id) => self.capture(&a.gateway_key, auth_id, a.amount).await,
            Err(GatewayError::Declined(reason)) => Ok(GatewayOutcome::Declined { reason }),
            Err(e @ GatewayError::Unavailable(_)) => Err(lost(GatewayCall::Authorization)(e)),
        }
    }

    async fn capture(&self, key: &str, auth_id: String, amount: Decimal) -> Result<GatewayOutcome, EngineError> {
        match self
            .gateway(self.core.gateway.capture(key.to_string(), auth_id.clone(), amount))
            .await
        {
            Ok(reference) => Ok(GatewayOutcome::Approved { reference }),
            Err(GatewayError::Declined(reason)) => {
                // Refused, so nothing was charged. Releasing the authorization is a courtesy
                // (an uncaptured authorization lapses by itself), hence best effort.
                let _ = self.gateway(self.core.gateway.void(key.to_string(), auth_id)).await;
                Ok(GatewayOutcome::Failed {
                    reason: format!("capture refused: {reason}"),
                })
            }
            Err(e @ GatewayError::Unavailable(_)) => Err(lost(GatewayCall::Capture)(e)),
        }
    }

    /// Asks the gateway what became of pending attempt `idx` and finishes it with the same key.
    /// `Failed` only if the gateway has no charge for the key.
    async fn settle_attempt(&self, idx: usize) -> Result<GatewayOutcome, EngineError> {
        let a = &self.order.payment.attempts[idx];
        let found = self
            .gateway(self.core.gateway.lookup(a.gateway_key.clone()))
            .await
            .map_err(lost(GatewayCall::Lookup))?;
        match found {
            Some(GatewayRecord::Charged { reference }) => self.capture(&a.gateway_key, reference, a.amount).await,
            Some(GatewayRecord::Declined { reason }) => Ok(GatewayOutcome::Declined { reason }),
            Some(GatewayRecord::Voided) | None => Ok(GatewayOutcome::Failed {
                reason: "the gateway has no charge for this attempt".into(),
            }),
            Some(GatewayRecord::Refunded { .. }) => {
                Err(unknown(GatewayCall::Lookup, UnknownCause::RefundUnderChargeKey))
            }
        }
    }

    /// Logs the outcome of attempt `idx`. A captured or declined outcome is the answer to the
    /// request `idem` (stored with it); a failed one answers nobody.
    async fn log_payment(
        &mut self,
        idx: usize,
        outcome: GatewayOutcome,
        idem: Idem,
    ) -> Result<OrderOutcome, EngineError> {
        let (idem, declined) = match &outcome {
            GatewayOutcome::Approved { .. } => (idem, None),
            GatewayOutcome::Declined { reason } => (idem, Some(reason.clone())),
            GatewayOutcome::Failed { .. } => (None, None),
        };
        let cmd = OrderCommand::RecordPaymentOutcome {
            attempt_idx: idx,
            outcome,
        };
        let events = self.order.decide(&cmd, self.core.clock.now())?;
        self.commit(events, idem, None, declined).await
    }

    /// Settles a pending attempt, if any, and logs its outcome.
    async fn settle_pending_attempt(&mut self) -> Result<(), EngineError> {
        if let Some(i) = self.order.pending_attempt() {
            let outcome = self.settle_attempt(i).await?;
            self.log_payment(i, outcome, None).await?;
        }
        Ok(())
    }

    /// `Internal::Expire`. Never releases stock while a payment's outcome is unknown: a pending
    /// attempt is settled first, and if the gateway cannot tell, the answer is an error so that
    /// expiry tries again later.
    pub(super) async fn expire(&mut self) -> Result<OrderOutcome, EngineError> {
        if self.order.status == OrderStatus::PaymentPending {
            self.settle_pending_attempt().await?;
        }
        if self.order.status != OrderStatus::PaymentPending {
            // Paid, declined or cancelled meanwhile: expiry no longer applies.
            return Ok(self.outcome(None, None));
        }
        let events = self.order.decide(&OrderCommand::Expire, self.core.clock.now())?;
        self.commit(events, None, None, None).await
    }

    /// `Internal::Resolve` (the settler): settles whatever is pending. `Ok` once nothing is.
    pub(super) async fn resolve(&mut self) -> Result<OrderOutcome, EngineError> {
        self.settle_pending_attempt().await?;
        if let Some(r) = self.order.pending_refund() {
            self.settle_refund(r, None, false).await?;
        }
        let now = self.core.clock.now();
        if self.order.status == OrderStatus::PaymentPending && now >= self.order.reservation_expires_at {
            // Expiry may have given up on this order while its attempt was unknown: hand it back.
            self.core.expiry.schedule(self.order.id, now);
        }
        Ok(self.outcome(None, None))
    }

    /// `POST /cancel`. A paid order is refunded first and cancelled when the refund succeeds.
    pub(super) async fn cancel(&mut self, reason: String, idem: Idem) -> Result<OrderOutcome, EngineError> {
        if let Some(Opened::Refund(r)) = self.opened_by(&idem) {
            return self.answer_refund(r, idem).await;
        }
        // Whether there is money to give back must be known first.
        self.settle_pending_attempt().await?;
        if let Some(r) = self.order.pending_refund()
            && self.order.refunds[r].for_cancel
        {
            // An earlier cancellation's refund is still open: this is its retry.
            return self.settle_refund(r, idem, false).await;
        }
        let now = self.core.clock.now();
        let events = self.order.decide(&OrderCommand::Cancel { reason }, now)?;
        if events.iter().any(|e| matches!(e, OrderEvent::RefundRequested { .. })) {
            let idx = self.order.refunds.len();
            let marker = idem.as_ref().map(|spec| Opened::Refund(idx).marker(spec, now));
            self.commit_with(events, None, None, |_, _| marker).await?;
            return self.settle_refund(idx, idem, true).await;
        }
        self.commit(events, idem, None, None).await
    }

    /// `POST /cancel {items}`: the units are cancelled, and what of their value was captured is
    /// refunded in the same record, then sent like any refund (a retry with the request's key
    /// is answered from it).
    pub(super) async fn cancel_items(
        &mut self,
        items: Vec<LineQty>,
        reason: String,
        idem: Idem,
    ) -> Result<OrderOutcome, EngineError> {
        if let Some(Opened::Refund(r)) = self.opened_by(&idem) {
            return self.answer_refund(r, idem).await;
        }
        // What was captured must be known, and an earlier refund finished, before deciding.
        self.settle_pending_attempt().await?;
        if let Some(r) = self.order.pending_refund() {
            self.settle_refund(r, None, false).await?;
        }
        let now = self.core.clock.now();
        let events = self.order.decide(&OrderCommand::CancelItems { items, reason }, now)?;
        let refund = events.iter().any(|e| matches!(e, OrderEvent::RefundRequested { .. }));
        if refund {
            let idx = self.order.refunds.len();
            let marker = idem.as_ref().map(|spec| Opened::Refund(idx).marker(spec, now));
            self.commit_with(events, None, None, |_, _| marker).await?;
            return self.settle_refund(idx, idem, true).await;
        }
        self.commit(events, idem, None, None).await
    }

    /// `POST /refunds`.
    pub(super) async fn refund(&mut self, ask: RefundAsk, idem: Idem) -> Result<OrderOutcome, EngineError> {
        // An unknown return is answered before anything pending is settled.
        let return_idx = match &ask.return_id {
            Some(id) => Some(self.order.find_return(id)?),
            None => None,
        };
        if let Some(Opened::Refund(r)) = self.opened_by(&idem) {
            return self.answer_refund(r, idem).await;
        }
        if let Some(r) = self.order.pending_refund() {
            let p = &self.order.refunds[r];
            let same = !p.for_cancel && p.amount == ask.amount && p.return_idx == return_idx && p.reason == ask.reason;
            if same {
                // The same refund asked again while its outcome is unknown: its retry.
                return self.settle_refund(r, idem, false).await;
            }
            self.settle_refund(r, None, false).await?;
        }
        let now = self.core.clock.now();
        let cmd = OrderCommand::RequestRefund {
            amount: ask.amount,
            return_id: ask.return_id,
            reason: ask.reason,
        };
        let events = self.order.decide(&cmd, now)?;
        let idx = self.order.refunds.len();
        let marker = idem.as_ref().map(|spec| Opened::Refund(idx).marker(spec, now));
        self.commit_with(events, None, None, |_, _| marker).await?;
        self.settle_refund(idx, idem, true).await
    }

    /// Answers the retry of the request that opened refund `r`.
    async fn answer_refund(&mut self, r: usize, idem: Idem) -> Result<OrderOutcome, EngineError> {
        let created = Some(self.order.refund_id(r));
        match &self.order.refunds[r].status {
            RefundStatus::Pending => self.settle_refund(r, idem, false).await,
            RefundStatus::Succeeded { .. } => self.answer(idem, created, None).await,
            RefundStatus::Failed { reason } => {
                let reason = reason.clone();
                self.answer(idem, created, Some(reason)).await
            }
        }
    }

    /// Finishes pending refund `r` and logs its outcome, the answer to `idem`: sent for the
    /// first time if `first`, else settled from the gateway's lookup (sent again with the same
    /// key if the gateway never got it). A declined refund answers 402.
    async fn settle_refund(&mut self, r: usize, idem: Idem, first: bool) -> Result<OrderOutcome, EngineError> {
        let refund = self.order.refunds[r].clone();
        let outcome = if first {
            self.send_refund(&refund).await?
        } else {
            let found = self
                .gateway(self.core.gateway.lookup(refund.gateway_key.clone()))
                .await
                .map_err(lost(GatewayCall::RefundLookup))?;
            match found {
                Some(GatewayRecord::Refunded { reference }) => GatewayOutcome::Approved { reference },
                Some(GatewayRecord::Declined { reason }) => GatewayOutcome::Declined { reason },
                None => self.send_refund(&refund).await?,
                Some(GatewayRecord::Charged { .. } | GatewayRecord::Voided) => {
                    return Err(unknown(GatewayCall::RefundLookup, UnknownCause::ChargeUnderRefundKey));
                }
            }
        };
        let declined = match &outcome {
            GatewayOutcome::Approved { .. } => None,
            GatewayOutcome::Declined { reason } | GatewayOutcome::Failed { reason } => Some(reason.clone()),
        };
        let cmd = OrderCommand::RecordRefundOutcome { refund_idx: r, outcome };
        let events = self.order.decide(&cmd, self.core.clock.now())?;
        let created = Some(self.order.refund_id(r));
        self.commit(events, idem, created, declined).await
    }

    async fn send_refund(&self, refund: &Refund) -> Result<GatewayOutcome, EngineError> {
        let capture_ref = self
            .order
            .payment
            .attempts
            .iter()
            .find_map(|a| match &a.status {
                AttemptStatus::Captured { authorization_id } => Some(authorization_id.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let sent = self
            .gateway(
                self.core
                    .gateway
                    .refund(refund.gateway_key.clone(), capture_ref, refund.amount),
            )
            .await;
        match sent {
            Ok(reference) => Ok(GatewayOutcome::Approved { reference }),
            Err(GatewayError::Declined(reason)) => Ok(GatewayOutcome::Declined { reason }),
            Err(e @ GatewayError::Unavailable(_)) => Err(lost(GatewayCall::Refund)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Opened, OrderOutcome};
    use crate::domain::Millis;
    use crate::engine::IdemSpec;

    #[test]
    fn a_marker_names_what_it_opened_and_is_never_a_response() {
        let spec: IdemSpec<OrderOutcome> = IdemSpec::for_test("k", [3; 32], Box::new(|_| (200, Vec::new())));
        for opened in [Opened::Attempt(0), Opened::Refund(12)] {
            let m = opened.marker(&spec, Millis(5));
            assert_eq!(m.status, crate::engine::idempotency::MARKER_STATUS);
            assert_eq!((m.key.as_str(), m.fingerprint, m.at), ("k", [3; 32], Millis(5)));
            assert_eq!(Opened::parse(&m.body), Some(opened));
        }
        assert_eq!(Opened::Refund(12).marker(&spec, Millis(5)).body, b"refund:12");
        for bad in [&b""[..], b"attempt", b"attempt:x", b"charge:1", b"\xff"] {
            assert_eq!(Opened::parse(bad), None);
        }
    }
}
