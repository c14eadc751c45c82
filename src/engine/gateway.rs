//! The payment gateway seam and the built-in simulated gateway.
//!
//! Every call carries an idempotency key; a gateway must answer a repeated key with the first
//! answer and never move money twice. `lookup` asks what became of a key, which is how the
//! engine settles an attempt whose outcome a crash, a timeout or a lost answer kept out of the
//! log (the payment-outcome protocol in ARCHITECTURE.md).
//!
//! The simulated gateway also injects faults, chosen by the card token like a payment
//! provider's test cards (documented in docs/API.md), so any client can exercise the protocol:
//! a lost capture answer, an authorization that answers too late, lost refund answers and
//! declined refunds. Tests have finer knobs (`lose_next_answers`, `fail_next`, latency).

use crate::domain::money::{Amount, Currency};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Token prefix the simulated gateway declines.
pub const DECLINE_TOKEN_PREFIX: &str = "tok_chargeDeclined";
/// Token prefix whose capture succeeds at the gateway but whose answer is lost (once per
/// attempt: a repeated capture with the same key answers normally).
pub const CAPTURE_ANSWER_LOST_TOKEN_PREFIX: &str = "tok_captureAnswerLost";
/// Token prefix whose authorization succeeds at the gateway but whose answer never arrives
/// (once per attempt), so the engine's gateway timeout expires.
pub const AUTHORIZE_TIMEOUT_TOKEN_PREFIX: &str = "tok_authorizeTimeout";
/// Token prefix whose refunds succeed at the gateway but whose answers are lost (once per
/// refund key).
pub const REFUND_ANSWER_LOST_TOKEN_PREFIX: &str = "tok_refundAnswerLost";
/// Token prefix whose refunds the gateway declines.
pub const REFUND_DECLINED_TOKEN_PREFIX: &str = "tok_refundDeclined";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused: card declined, insufficient funds, refund refused. Final.
    #[error("declined: {0}")]
    Declined(String),
    /// The gateway could not be reached, failed or did not answer in time; the outcome is
    /// unknown until `lookup` says what it recorded for the key.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
}

/// The final answer recorded for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayRecord {
    /// The charge key was authorized (and possibly captured); capture is idempotent by key.
    Charged {
        reference: String,
    },
    Declined {
        reason: String,
    },
    Refunded {
        reference: String,
    },
    /// The authorization under this key was voided: nothing was, or will be, charged.
    Voided,
}

pub trait PaymentGateway: Send + Sync + 'static {
    /// Authorizes `amount` on `token`; returns an authorization id.
    fn authorize(
        &self,
        key: String,
        token: String,
        amount: Amount,
        currency: Currency,
    ) -> BoxFuture<'static, Result<String, GatewayError>>;
    /// Captures an authorization in full; returns the capture reference.
    fn capture(
        &self,
        key: String,
        authorization_id: String,
        amount: Amount,
    ) -> BoxFuture<'static, Result<String, GatewayError>>;
    /// Voids an authorization that was not captured.
    fn void(&self, key: String, authorization_id: String) -> BoxFuture<'static, Result<(), GatewayError>>;
    /// Refunds `amount` of a capture.
    fn refund(
        &self,
        key: String,
        capture_reference: String,
        amount: Amount,
    ) -> BoxFuture<'static, Result<String, GatewayError>>;
    /// What the gateway recorded for a charge or refund key, if it ever got one.
    fn lookup(&self, key: String) -> BoxFuture<'static, Result<Option<GatewayRecord>, GatewayError>>;
}

/// Knobs of the simulated gateway.
#[derive(Clone, Debug, Default)]
pub struct SimulatedGatewayConfig {
    /// Added to every call.
    pub latency_ms: u64,
}

/// An in-process gateway: declines tokens starting with [`DECLINE_TOKEN_PREFIX`], injects the
/// faults of the other `*_TOKEN_PREFIX` tokens, approves the rest, remembers every key (so
/// retries are idempotent) and keeps a ledger of the money it moved, so tests can prove nothing
/// was charged or refunded twice.
#[derive(Clone, Default)]
pub struct SimulatedGateway {
    inner: Arc<SimInner>,
}

#[derive(Default)]
struct SimInner {
    config: Mutex<SimulatedGatewayConfig>,
    /// Every key's record and every authorization, under one lock so a call is atomic.
    books: Mutex<Books>,
    lookups: AtomicU64,
    seq: AtomicU64,
    /// The next N calls fail with `Unavailable` after doing their work (the gateway moved the
    /// money but the answer was lost): how a crash or timeout after the call looks.
    lose_next_answers: AtomicU32,
    /// The next N calls fail with `Unavailable` before doing anything.
    fail_next: AtomicU32,
}

#[derive(Default)]
struct Books {
    /// Final answers by key (charges are recorded under the authorization key).
    records: HashMap<String, GatewayRecord>,
    /// Authorizations by id (the id is also the capture reference refunds name).
    authorizations: HashMap<String, Authorization>,
    captures: u64,
    refunds: u64,
    captured: Decimal,
    refunded: Decimal,
}

struct Authorization {
    amount: Amount,
    fault: Fault,
    captured: bool,
    voided: bool,
    refunded: Amount,
}

/// The fault a token asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    CaptureAnswerLost,
    AuthorizeTimeout,
    RefundAnswerLost,
    RefundDeclined,
}

impl Fault {
    fn of(token: &str) -> Fault {
        let table = [
            (CAPTURE_ANSWER_LOST_TOKEN_PREFIX, Fault::CaptureAnswerLost),
            (AUTHORIZE_TIMEOUT_TOKEN_PREFIX, Fault::AuthorizeTimeout),
            (REFUND_ANSWER_LOST_TOKEN_PREFIX, Fault::RefundAnswerLost),
            (REFUND_DECLINED_TOKEN_PREFIX, Fault::RefundDeclined),
        ];
        table
            .into_iter()
            .find(|(prefix, _)| token.starts_with(prefix))
            .map_or(Fault::None, |(_, f)| f)
    }
}

/// How a call that did its work answers.
enum Delivery {
    Answer,
    /// The answer is lost on the way back: the caller sees `Unavailable`.
    Lose,
    /// The answer never comes: the caller's timeout decides.
    Withhold,
}

impl SimulatedGateway {
    pub fn new(config: SimulatedGatewayConfig) -> SimulatedGateway {
        let g = SimulatedGateway::default();
        *g.inner.config.lock() = config;
        g
    }

    /// Changes the latency added to every call from now on.
    pub fn set_latency_ms(&self, latency_ms: u64) {
        self.inner.config.lock().latency_ms = latency_ms;
    }

    /// Number of captures performed (each key counted once).
    pub fn captures(&self) -> u64 {
        self.inner.books.lock().captures
    }

    /// Number of refunds performed (each key counted once).
    pub fn refunds(&self) -> u64 {
        self.inner.books.lock().refunds
    }

    /// Money captured, summed over every capture.
    pub fn captured_amount(&self) -> Decimal {
        self.inner.books.lock().captured
    }

    /// Money refunded, summed over every refund.
    pub fn refunded_amount(&self) -> Decimal {
        self.inner.books.lock().refunded
    }

    /// Number of `lookup` calls received, failed ones included.
    pub fn lookups(&self) -> u64 {
        self.inner.lookups.load(Ordering::SeqCst)
    }

    /// Makes the next `n` calls do their work but report `Unavailable`.
    pub fn lose_next_answers(&self, n: u32) {
        self.inner.lose_next_answers.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` calls fail with `Unavailable` without doing anything.
    pub fn fail_next(&self, n: u32) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SimInner) -> (Result<T, GatewayError>, Delivery) + Send + 'static,
    ) -> BoxFuture<'static, Result<T, GatewayError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let latency_ms = inner.config.lock().latency_ms;
            if latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(latency_ms)).await;
            }
            if Self::take(&inner.fail_next) {
                return Err(GatewayError::Unavailable("injected failure".into()));
            }
            let (out, delivery) = work(&inner);
            if Self::take(&inner.lose_next_answers) {
                return Err(GatewayError::Unavailable("injected lost answer".into()));
            }
            match delivery {
                Delivery::Answer => out,
                Delivery::Lose => Err(GatewayError::Unavailable("the answer was lost (test token)".into())),
                Delivery::Withhold => std::future::pending().await,
            }
        })
    }
}

impl SimInner {
    fn next_ref(&self, prefix: &str) -> String {
        format!("{prefix}_{:012}", self.seq.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

fn declined<T>(reason: &str) -> (Result<T, GatewayError>, Delivery) {
    (Err(GatewayError::Declined(reason.into())), Delivery::Answer)
}

impl PaymentGateway for SimulatedGateway {
    fn authorize(
        &self,
        key: String,
        token: String,
        amount: Amount,
        _currency: Currency,
    ) -> BoxFuture<'static, Result<String, GatewayError>> {
        self.call(move |g| {
            let mut books = g.books.lock();
            if let Some(r) = books.records.get(&key) {
                let out = match r {
                    GatewayRecord::Charged { reference } => Ok(reference.clone()),
                    GatewayRecord::Declined { reason } => Err(GatewayError::Declined(reason.clone())),
                    GatewayRecord::Voided => Err(GatewayError::Declined("voided".into())),
                    GatewayRecord::Refunded { .. } => {
                        Err(GatewayError::Unavailable("key reused for another operation".into()))
                    }
                };
                return (out, Delivery::Answer);
            }
            if token.starts_with(DECLINE_TOKEN_PREFIX) {
                let reason = "card_declined".to_string();
                books
                    .records
                    .insert(key, GatewayRecord::Declined { reason: reason.clone() });
                return declined(&reason);
            }
            let auth = g.next_ref("auth");
            let fault = Fault::of(&token);
            books.authorizations.insert(
                auth.clone(),
                Authorization {
                    amount,
                    fault,
                    captured: false,
                    voided: false,
                    refunded: Decimal::ZERO,
                },
            );
            // Authorization and capture are recorded under the same key: a charge.
            books.records.insert(
                key,
                GatewayRecord::Charged {
                    reference: auth.clone(),
                },
            );
            let delivery = match fault {
                Fault::AuthorizeTimeout => Delivery::Withhold,
                _ => Delivery::Answer,
            };
            (Ok(auth), delivery)
        })
    }

    fn capture(
        &self,
        key: String,
        authorization_id: String,
        amount: Amount,
    ) -> BoxFuture<'static, Result<String, GatewayError>> {
        self.call(move |g| {
            let mut books = g.books.lock();
            let books = &mut *books;
            let ckey = format!("{key}:capture");
            if let Some(GatewayRecord::Charged { reference }) = books.records.get(&ckey) {
                return (Ok(reference.clone()), Delivery::Answer);
            }
            let Some(auth) = books.authorizations.get_mut(&authorization_id) else {
                return declined("unknown authorization");
            };
            if auth.voided {
                return declined("the authorization was voided");
            }
            if amount > auth.amount {
                return declined("the amount exceeds the authorization");
            }
            auth.captured = true;
            books.captures += 1;
            books.captured += amount;
            books.records.insert(
                ckey,
                GatewayRecord::Charged {
                    reference: authorization_id.clone(),
                },
            );
            let delivery = match auth.fault {
                Fault::CaptureAnswerLost => Delivery::Lose,
                _ => Delivery::Answer,
            };
            (Ok(authorization_id), delivery)
        })
    }

    fn void(&self, key: String, authorization_id: String) -> BoxFuture<'static, Result<(), GatewayError>> {
        self.call(move |g| {
            let mut books = g.books.lock();
            match books.authorizations.get_mut(&authorization_id) {
                Some(a) if a.captured => return declined("the authorization was captured"),
                Some(a) => a.voided = true,
                None => {}
            }
            books.records.insert(key, GatewayRecord::Voided);
            (Ok(()), Delivery::Answer)
        })
    }

    fn refund(
        &self,
        key: String,
        capture_reference: String,
        amount: Amount,
    ) -> BoxFuture<'static, Result<String, GatewayError>> {
        self.call(move |g| {
            let mut books = g.books.lock();
            let books = &mut *books;
            match books.records.get(&key) {
                Some(GatewayRecord::Refunded { reference }) => return (Ok(reference.clone()), Delivery::Answer),
                Some(GatewayRecord::Declined { reason }) => return declined(reason),
                Some(_) => {
                    return (
                        Err(GatewayError::Unavailable("key reused for another operation".into())),
                        Delivery::Answer,
                    );
                }
                None => {}
            }
            let refusal = match books.authorizations.get(&capture_reference) {
                None => Some("unknown capture"),
                Some(a) if !a.captured => Some("nothing was captured"),
                Some(a) if a.fault == Fault::RefundDeclined => Some("refund_declined"),
                Some(a) if a.refunded + amount > a.amount => Some("the amount exceeds what is left of the capture"),
                Some(_) => None,
            };
            if let Some(reason) = refusal {
                books
                    .records
                    .insert(key, GatewayRecord::Declined { reason: reason.into() });
                return declined(reason);
            }
            let auth = books.authorizations.get_mut(&capture_reference).expect("checked above");
            auth.refunded += amount;
            books.refunds += 1;
            books.refunded += amount;
            let r = g.next_ref("re");
            books
                .records
                .insert(key, GatewayRecord::Refunded { reference: r.clone() });
            let delivery = match auth.fault {
                Fault::RefundAnswerLost => Delivery::Lose,
                _ => Delivery::Answer,
            };
            (Ok(r), delivery)
        })
    }

    fn lookup(&self, key: String) -> BoxFuture<'static, Result<Option<GatewayRecord>, GatewayError>> {
        self.inner.lookups.fetch_add(1, Ordering::SeqCst);
        // For a charge key this is the authorization; capture is idempotent on the same key.
        self.call(move |g| (Ok(g.books.lock().records.get(&key).cloned()), Delivery::Answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[tokio::test]
    async fn a_lost_capture_answer_still_captures_once_and_the_repeat_answers() {
        let g = SimulatedGateway::default();
        let amount = Decimal::new(1000, 2);
        let auth = g
            .authorize("k".into(), "tok_captureAnswerLost".into(), amount, usd())
            .await
            .unwrap();
        let lost = g.capture("k".into(), auth.clone(), amount).await;
        assert!(matches!(lost, Err(GatewayError::Unavailable(_))));
        assert_eq!(
            g.lookup("k".into()).await.unwrap(),
            Some(GatewayRecord::Charged {
                reference: auth.clone()
            })
        );
        assert_eq!(g.capture("k".into(), auth.clone(), amount).await.unwrap(), auth);
        assert_eq!((g.captures(), g.captured_amount()), (1, amount));
        let voided = g.void("k".into(), auth).await;
        assert!(
            matches!(voided, Err(GatewayError::Declined(_))),
            "a capture cannot be voided"
        );
    }

    #[tokio::test]
    async fn refunds_never_exceed_the_capture_and_the_refund_tokens_apply() {
        let g = SimulatedGateway::default();
        let amount = Decimal::new(500, 2);
        for (token, key) in [
            ("tok_ok", "a"),
            ("tok_refundDeclined", "b"),
            ("tok_refundAnswerLost", "c"),
        ] {
            let auth = g.authorize(key.into(), token.into(), amount, usd()).await.unwrap();
            g.capture(key.into(), auth, amount).await.unwrap();
        }
        let auth_of = |k: &str| match g.inner.books.lock().records.get(k) {
            Some(GatewayRecord::Charged { reference }) => reference.clone(),
            other => panic!("{other:?}"),
        };
        let too_much = g.refund("a-r1".into(), auth_of("a"), amount + Decimal::ONE).await;
        assert!(matches!(too_much, Err(GatewayError::Declined(_))));
        g.refund("a-r2".into(), auth_of("a"), amount).await.unwrap();
        let refused = g.refund("b-r1".into(), auth_of("b"), amount).await;
        assert_eq!(refused, Err(GatewayError::Declined("refund_declined".into())));
        let lost = g.refund("c-r1".into(), auth_of("c"), amount).await;
        assert!(matches!(lost, Err(GatewayError::Unavailable(_))));
        assert!(matches!(
            g.lookup("c-r1".into()).await.unwrap(),
            Some(GatewayRecord::Refunded { .. })
        ));
        g.refund("c-r1".into(), auth_of("c"), amount).await.unwrap();
        assert_eq!((g.refunds(), g.refunded_amount()), (2, amount + amount));
    }
}
