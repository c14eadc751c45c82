//! The payment gateway seam and the built-in simulated gateway.
//!
//! Every call carries an idempotency key; a gateway must answer a repeated key with the first
//! answer and never move money twice. `lookup` asks what became of a key, which is how the
//! engine resolves an attempt whose outcome a crash or a timeout kept out of the log.

use crate::domain::money::{Amount, Currency};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Token prefix the simulated gateway declines.
pub const DECLINE_TOKEN_PREFIX: &str = "tok_chargeDeclined";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused: card declined, insufficient funds. Final.
    #[error("declined: {0}")]
    Declined(String),
    /// The gateway could not be reached or failed; the outcome is unknown until `lookup`.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
}

/// The final answer recorded for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayRecord {
    Charged { reference: String },
    Declined { reason: String },
    Refunded { reference: String },
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

/// An in-process gateway: declines tokens starting with [`DECLINE_TOKEN_PREFIX`], approves the
/// rest, remembers every key (so retries are idempotent) and counts money moved, so tests can
/// prove nothing was charged or refunded twice.
#[derive(Clone, Default)]
pub struct SimulatedGateway {
    inner: Arc<SimInner>,
}

#[derive(Default)]
struct SimInner {
    config: Mutex<SimulatedGatewayConfig>,
    /// Final answers by key (charges are recorded under the authorization key).
    records: Mutex<HashMap<String, GatewayRecord>>,
    captures: AtomicU64,
    refunds: AtomicU64,
    seq: AtomicU64,
    /// The next N calls fail with `Unavailable` after doing their work (the gateway moved the
    /// money but the answer was lost): how a crash or timeout after the call looks.
    lose_next_answers: AtomicU32,
    /// The next N calls fail with `Unavailable` before doing anything.
    fail_next: AtomicU32,
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
        self.inner.captures.load(Ordering::SeqCst)
    }

    /// Number of refunds performed (each key counted once).
    pub fn refunds(&self) -> u64 {
        self.inner.refunds.load(Ordering::SeqCst)
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
        work: impl FnOnce(&SimInner) -> Result<T, GatewayError> + Send + 'static,
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
            let out = work(&inner);
            if Self::take(&inner.lose_next_answers) {
                return Err(GatewayError::Unavailable("injected lost answer".into()));
            }
            out
        })
    }
}

impl SimInner {
    fn next_ref(&self, prefix: &str) -> String {
        format!("{prefix}_{:012}", self.seq.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

impl PaymentGateway for SimulatedGateway {
    fn authorize(
        &self,
        key: String,
        token: String,
        _amount: Amount,
        _currency: Currency,
    ) -> BoxFuture<'static, Result<String, GatewayError>> {
        self.call(move |g| {
            let mut recs = g.records.lock();
            if let Some(r) = recs.get(&key) {
                return match r {
                    GatewayRecord::Charged { reference } => Ok(reference.clone()),
                    GatewayRecord::Declined { reason } => Err(GatewayError::Declined(reason.clone())),
                    GatewayRecord::Refunded { .. } => {
                        Err(GatewayError::Unavailable("key reused for another operation".into()))
                    }
                };
            }
            if token.starts_with(DECLINE_TOKEN_PREFIX) {
                recs.insert(
                    key,
                    GatewayRecord::Declined {
                        reason: "card_declined".into(),
                    },
                );
                return Err(GatewayError::Declined("card_declined".into()));
            }
            let auth = g.next_ref("auth");
            // Authorization and capture are recorded under the same key: a charge.
            recs.insert(
                key,
                GatewayRecord::Charged {
                    reference: auth.clone(),
                },
            );
            Ok(auth)
        })
    }

    fn capture(
        &self,
        key: String,
        authorization_id: String,
        _amount: Amount,
    ) -> BoxFuture<'static, Result<String, GatewayError>> {
        self.call(move |g| {
            let mut recs = g.records.lock();
            let ckey = format!("{key}:capture");
            if let Some(GatewayRecord::Charged { reference }) = recs.get(&ckey) {
                return Ok(reference.clone());
            }
            g.captures.fetch_add(1, Ordering::SeqCst);
            recs.insert(
                ckey,
                GatewayRecord::Charged {
                    reference: authorization_id.clone(),
                },
            );
            Ok(authorization_id)
        })
    }

    fn void(&self, key: String, _authorization_id: String) -> BoxFuture<'static, Result<(), GatewayError>> {
        self.call(move |g| {
            g.records.lock().insert(
                key,
                GatewayRecord::Declined {
                    reason: "voided".into(),
                },
            );
            Ok(())
        })
    }

    fn refund(
        &self,
        key: String,
        _capture_reference: String,
        _amount: Amount,
    ) -> BoxFuture<'static, Result<String, GatewayError>> {
        self.call(move |g| {
            let mut recs = g.records.lock();
            if let Some(GatewayRecord::Refunded { reference }) = recs.get(&key) {
                return Ok(reference.clone());
            }
            g.refunds.fetch_add(1, Ordering::SeqCst);
            let r = g.next_ref("re");
            recs.insert(key, GatewayRecord::Refunded { reference: r.clone() });
            Ok(r)
        })
    }

    fn lookup(&self, key: String) -> BoxFuture<'static, Result<Option<GatewayRecord>, GatewayError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            // For a charge key this is the authorization; capture is idempotent on the same key.
            Ok(inner.records.lock().get(&key).cloned())
        })
    }
}
