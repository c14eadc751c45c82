//! Reservation expiry driven by a manual clock: the decision is logged as an event, the order
//! is cancelled with a reason naming the expiry, and its stock comes back; an expiry the order
//! refuses for now is asked again until it settles.

use crate::support::*;
use oms::domain::{Entry, Millis, OrderId, OrderStatus, Rejection};
use oms::engine::{Clock, Engine, EngineError, ManualClock, OrderRequest, SimulatedGateway};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Waits (bounded) until `order` has `status`, woken by each durable record.
pub async fn wait_for_status(engine: &Engine, order: OrderId, status: OrderStatus) {
    let (mut rx, _) = engine.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if engine.order(order).await.unwrap().status == status {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("feed closed: {e}"),
            Err(_) => panic!("order {order} did not reach {status:?} in time"),
        }
    }
}

#[tokio::test]
async fn an_unpaid_order_expires_and_releases_its_stock() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 5)]).await;
    let mut req = new_order("u", &[("a", 2, "1.00")]);
    req.reservation_ttl_ms = 60_000;
    let o = h.place(req).await;
    let paid_in_time = h.place(new_order("v", &[("a", 1, "1.00")])).await;
    h.engine
        .order_request(paid_in_time.id, OrderRequest::Pay { token: "tok".into() }, None)
        .await
        .unwrap();
    assert_eq!(o.reservation_expires_at.0, T0.0 + 60_000);

    h.clock.advance_ms(60_000);
    wait_for_status(&h.engine, o.id, OrderStatus::Cancelled).await;
    let cancelled = h.engine.order(o.id).await.unwrap();
    let last = cancelled.history.last().unwrap();
    assert!(last.reason.starts_with("reservation expired at"), "{}", last.reason);
    assert_eq!(last.actor, "system");
    assert_eq!(
        h.pair("a", "w").await.reserved,
        1,
        "only the paid order keeps its units"
    );
    let late = h
        .engine
        .order_request(o.id, OrderRequest::Pay { token: "tok".into() }, None)
        .await
        .unwrap_err();
    assert!(matches!(
        late,
        EngineError::Rejected(Rejection::InvalidTransition { .. })
    ));
    // The expiry is a logged event, so replay reproduces it without a clock.
    let engine = h.engine.clone();
    let replayed = tokio::task::spawn_blocking(move || engine.replay_state())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.orders[&o.id].status, OrderStatus::Cancelled);
    h.assert_replay_equals_live().await;
}

#[tokio::test]
async fn a_reservation_that_expired_while_down_is_released_after_restart() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 5)]).await;
    let o = h.place(new_order("u", &[("a", 5, "1.00")])).await;
    h.engine.shutdown().await.unwrap();
    h.clock.advance_ms(16 * 60 * 1000);
    let h = h.restart_after_shutdown().await;
    wait_for_status(&h.engine, o.id, OrderStatus::Cancelled).await;
    assert_eq!(h.pair("a", "w").await.available, 5);
    let (_, records) = h.engine.read_log(1, u64::MAX, 100).unwrap();
    assert!(
        records
            .iter()
            .any(|c| matches!(&c.record.entry, Entry::OrderUpdated { order_id, .. } if *order_id == o.id))
    );
    h.assert_replay_equals_live().await;
}

/// An attempt whose answer was lost (gateway timeout) and that the client never retries must
/// not hold the stock forever: at expiry the engine settles it with the gateway, then expires.
#[tokio::test]
async fn expiry_settles_an_abandoned_payment_attempt_then_releases_stock() {
    let h = Harness::with_config(|c| c.gateway_timeout_ms = 50).await;
    h.one_warehouse(&[("a", 3)]).await;
    let mut req = new_order("u", &[("a", 3, "1.00")]);
    req.reservation_ttl_ms = 60_000;
    let o = h.place(req).await;
    h.gateway.set_latency_ms(60_000);
    let err = h
        .engine
        .order_request(o.id, OrderRequest::Pay { token: "tok".into() }, None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::OutcomeUnknown(_)), "{err}");
    h.gateway.set_latency_ms(0);
    h.clock.advance_ms(60_000);
    wait_for_status(&h.engine, o.id, OrderStatus::Cancelled).await;
    let order = h.engine.order(o.id).await.unwrap();
    assert!(matches!(
        order.payment.attempts[0].status,
        oms::domain::order::AttemptStatus::Failed { .. }
    ));
    assert_eq!(h.pair("a", "w").await.available, 3);
    assert_eq!(h.gateway.captures(), 0);
    h.assert_replay_equals_live().await;
}

/// A clock that steps back by `back_ms` right after the first reading at or past `step_at`,
/// as an NTP correction would: whoever reads it next sees an earlier time.
struct SteppingBackClock {
    manual: ManualClock,
    step_at: Millis,
    back_ms: u64,
    stepped: AtomicBool,
}

impl Clock for SteppingBackClock {
    fn now(&self) -> Millis {
        let t = self.manual.now();
        if self.stepped.load(Ordering::SeqCst) {
            return Millis(t.0 - self.back_ms);
        }
        if t >= self.step_at {
            self.stepped.store(true, Ordering::SeqCst);
        }
        t
    }

    fn sleep_until(&self, at: Millis) -> futures::future::BoxFuture<'static, ()> {
        let back_ms = if self.stepped.load(Ordering::SeqCst) {
            self.back_ms
        } else {
            0
        };
        self.manual.sleep_until(Millis(at.0 + back_ms))
    }
}

/// The expiry task finds the reservation due, then the clock steps back a second before the
/// order's actor decides: its answer is "not yet". That answer used to be dropped, and the
/// order held its stock forever; now the expiry is asked again after a backoff and settles.
#[tokio::test]
async fn an_expiry_refused_because_the_clock_stepped_back_is_retried_until_it_settles() {
    let manual = ManualClock::new(T0);
    let expires_at = Millis(T0.0 + 60_000);
    let clock = SteppingBackClock {
        manual: manual.clone(),
        step_at: expires_at,
        back_ms: 1_000,
        stepped: AtomicBool::new(false),
    };
    let dir = tempfile::tempdir().unwrap();
    let gateway = SimulatedGateway::default();
    let engine = Engine::open(config(dir.path(), None), Arc::new(clock), Arc::new(gateway.clone()))
        .await
        .unwrap();
    let h = Harness {
        engine,
        clock: manual.clone(),
        gateway,
        dir,
        tweak: |_| {},
    };
    h.one_warehouse(&[("a", 3)]).await;
    let mut req = new_order("u", &[("a", 3, "1.00")]);
    req.reservation_ttl_ms = 60_000;
    let o = h.place(req).await;
    assert_eq!(o.reservation_expires_at, expires_at);

    manual.set(expires_at);
    // Wait (bounded) until the refused expiry has been put back for a retry.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.engine.stats().expiry_retries_total == 0 {
        assert!(std::time::Instant::now() < deadline, "the expiry was never retried");
        tokio::task::yield_now().await;
    }
    assert_eq!(h.engine.order(o.id).await.unwrap().status, OrderStatus::PaymentPending);
    assert_eq!(h.pair("a", "w").await.available, 0);
    // Time goes on past the reservation again; the retry is due and settles it.
    manual.advance_ms(2_000);
    wait_for_status(&h.engine, o.id, OrderStatus::Cancelled).await;
    assert_eq!(h.pair("a", "w").await.available, 3);
    h.assert_replay_equals_live().await;
}
