//! Reservation expiry driven by a manual clock: the decision is logged as an event, the order
//! is cancelled with a reason naming the expiry, and its stock comes back.

use crate::support::*;
use oms::domain::{Entry, OrderId, OrderStatus, Rejection};
use oms::engine::{Engine, EngineError, OrderRequest};
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
