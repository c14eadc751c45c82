//! Payments through the simulated gateway: declines cancel and release; lost answers and
//! crashes between the gateway call and the log record are settled without charging twice.

use crate::expiry::wait_for_status;
use crate::support::*;
use oms::domain::order::AttemptStatus;
use oms::domain::{Millis, Order, OrderId, OrderStatus};
use oms::engine::{Engine, EngineError, ManualClock, OrderRequest, SETTLE_DELAY_MS_MAX, SimulatedGateway};
use std::sync::Arc;
use wal::{CrashMode, SimFault, SimOp, SimStorage};

#[tokio::test]
async fn a_declined_payment_cancels_the_order_and_releases_stock() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 2)]).await;
    let o = h.place(new_order("u", &[("a", 2, "5.00")])).await;
    let out = h.pay(o.id, "tok_chargeDeclined_insufficient").await.unwrap();
    assert_eq!(out.declined.as_deref(), Some("card_declined"));
    assert_eq!(out.order.status, OrderStatus::Cancelled);
    assert_eq!(h.pair("a", "w").await.available, 2);
    assert_eq!(h.gateway.captures(), 0);
    h.assert_replay_equals_live().await;
}

#[tokio::test]
async fn a_lost_gateway_answer_is_settled_by_the_retry_without_a_second_charge() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 1)]).await;
    let o = h.place(new_order("u", &[("a", 1, "5.00")])).await;
    // The gateway authorizes but its answer never arrives.
    h.gateway.lose_next_answers(1);
    let err = h.pay(o.id, "tok_visa").await.unwrap_err();
    assert!(matches!(err, EngineError::OutcomeUnknown(_)), "{err}");
    let open = h.engine.order(o.id).await.unwrap();
    assert_eq!(open.payment.attempts[0].status, AttemptStatus::Pending);
    // Expiry waits for a payment in progress rather than cancelling under it.
    let paid = h.pay(o.id, "tok_visa").await.unwrap();
    assert_eq!(paid.order.status, OrderStatus::Confirmed);
    assert_eq!(
        paid.order.payment.attempts.len(),
        1,
        "the open attempt was settled, not repeated"
    );
    assert_eq!(h.gateway.captures(), 1);
    h.assert_replay_equals_live().await;
}

/// A crash after the gateway charged but before the outcome reached the log: recovery asks the
/// gateway, finishes with the same key, and the customer is charged once.
#[tokio::test]
async fn a_crash_between_charge_and_log_is_settled_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let gateway = SimulatedGateway::default();
    let storage = Arc::new(SimStorage::new());
    let mut cfg = config(dir.path(), Some(storage.clone()));
    cfg.wal.sync = wal::SyncPolicy::Always;
    let engine = Engine::open(cfg.clone(), Arc::new(clock.clone()), Arc::new(gateway.clone()))
        .await
        .unwrap();
    let h = Harness {
        engine,
        clock: clock.clone(),
        gateway: gateway.clone(),
        dir,
        tweak: |_| {},
    };
    h.one_warehouse(&[("a", 1)]).await;
    let o = h.place(new_order("u", &[("a", 1, "5.00")])).await;
    // Sync 1: the PaymentAttempted record. Sync 2: the outcome record, which fails.
    storage.fail_nth(SimOp::Sync, 2, SimFault::Eio);
    let err = h.pay(o.id, "tok_visa").await.unwrap_err();
    assert!(matches!(err, EngineError::Unavailable(_)), "{err}");
    assert_eq!(gateway.captures(), 1, "the gateway did charge");
    assert!(!h.engine.writable(), "a failed sync poisons the log");

    let survivor = Arc::new(storage.crash(CrashMode::DropUnsynced));
    drop(h.engine);
    let cfg = config(h.dir.path(), Some(survivor));
    let engine = Engine::open(cfg, Arc::new(clock.clone()), Arc::new(gateway.clone()))
        .await
        .unwrap();
    wait_for_status(&engine, o.id, OrderStatus::Confirmed).await;
    assert_eq!(gateway.captures(), 1, "settled with the same key: no second charge");
    let h = Harness { engine, ..h };
    h.assert_replay_equals_live().await;
}

/// A gateway slower than the timeout: the client gets 503 and the attempt stays open; the
/// retry finds the gateway never recorded it, closes it as failed, and pays with a new attempt.
#[tokio::test]
async fn a_gateway_timeout_leaves_the_attempt_open_and_the_retry_settles_it() {
    let h = Harness::with_config(|c| c.gateway_timeout_ms = 50).await;
    h.one_warehouse(&[("a", 1)]).await;
    let o = h.place(new_order("u", &[("a", 1, "5.00")])).await;
    h.gateway.set_latency_ms(60_000);
    let err = h.pay(o.id, "tok_visa").await.unwrap_err();
    assert!(
        matches!(&err, EngineError::OutcomeUnknown(m) if m.to_string().contains("timed out")),
        "{err}"
    );
    assert_eq!(
        h.engine.order(o.id).await.unwrap().payment.attempts[0].status,
        AttemptStatus::Pending
    );
    h.gateway.set_latency_ms(0);
    let paid = h.pay(o.id, "tok_visa").await.unwrap();
    assert_eq!(paid.order.status, OrderStatus::Confirmed);
    assert!(matches!(
        paid.order.payment.attempts[0].status,
        AttemptStatus::Failed { .. }
    ));
    assert_eq!(paid.order.payment.attempts.len(), 2);
    assert_eq!(h.gateway.captures(), 1);
    h.assert_replay_equals_live().await;
}

// ---- The payment-outcome protocol under injected faults (issue 9: defects 1, 5 and 11). ----

/// Waits (bounded, without sleeping) until `done` holds, letting the engine's tasks run.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::task::yield_now().await;
    }
}

/// The settler's view of `id`: (due_at, failed tries), or None if it is not queued.
fn queued(h: &Harness, id: OrderId) -> Option<(Option<Millis>, u32)> {
    h.engine
        .unsettled_payments()
        .into_iter()
        .find(|u| u.order_id == id)
        .map(|u| (u.due_at, u.failed_tries))
}

/// Exact money: one captured attempt, captured = total at the gateway and on the order.
fn assert_paid_once(h: &Harness, o: &Order) {
    let captured: Vec<_> = o
        .payment
        .attempts
        .iter()
        .filter(|a| matches!(a.status, AttemptStatus::Captured { .. }))
        .collect();
    assert_eq!(captured.len(), 1, "{:?}", o.payment.attempts);
    assert_eq!(o.payment.captured, o.total_amount);
    assert_eq!(h.gateway.captures(), 1, "one capture at the gateway");
    assert_eq!(h.gateway.captured_amount(), o.total_amount);
    assert!(o.payment.refunded <= o.payment.captured);
}

/// A paid order whose shipments are all delivered: refundable.
async fn delivered(h: &Harness, token: &str) -> Arc<Order> {
    h.one_warehouse(&[("a", 5)]).await;
    let o = h.place(new_order("u", &[("a", 2, "10.00")])).await;
    h.pay(o.id, token).await.unwrap();
    let f = h.engine.order_request(o.id, OrderRequest::Fulfill, None).await.unwrap();
    for i in 0..f.order.shipments.len() {
        let shipment_id = f.order.shipment_id(i);
        let ship = OrderRequest::Ship {
            shipment_id: shipment_id.clone(),
            carrier: None,
            tracking_number: None,
        };
        h.engine.order_request(o.id, ship, None).await.unwrap();
        h.engine
            .order_request(o.id, OrderRequest::Deliver { shipment_id }, None)
            .await
            .unwrap();
    }
    h.engine.order(o.id).await.unwrap()
}

fn refund_of(amount: &str) -> OrderRequest {
    OrderRequest::Refund {
        amount: money(amount),
        return_id: None,
        reason: "goodwill".into(),
    }
}

/// Defect 1: a capture whose answer is lost used to close the attempt as failed, and the
/// retry charged again under a new key. It stays pending; the retry captures once.
#[tokio::test]
async fn a_lost_capture_answer_stays_pending_and_the_retry_charges_once() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 1)]).await;
    let o = h.place(new_order("u", &[("a", 1, "5.00")])).await;
    let err = h.pay(o.id, "tok_captureAnswerLost").await.unwrap_err();
    assert!(matches!(err, EngineError::OutcomeUnknown(_)), "{err}");
    let open = h.engine.order(o.id).await.unwrap();
    assert_eq!(open.status, OrderStatus::PaymentPending);
    assert_eq!(open.payment.attempts[0].status, AttemptStatus::Pending);
    assert_eq!(h.gateway.captures(), 1, "the money moved");
    let paid = h.pay(o.id, "tok_visa").await.unwrap();
    assert_eq!(paid.order.status, OrderStatus::Confirmed);
    assert_eq!(paid.order.payment.attempts.len(), 1, "settled, not repeated");
    assert_paid_once(&h, &paid.order);
    h.assert_replay_equals_live().await;
}

/// Defect 1: expiry must not release the stock of an order whose payment outcome is unknown;
/// the money did move, so once the gateway answers again the order is paid, not cancelled.
#[tokio::test]
async fn expiry_never_releases_stock_while_a_payment_outcome_is_unknown() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 3)]).await;
    let mut req = new_order("u", &[("a", 3, "1.00")]);
    req.reservation_ttl_ms = 60_000;
    let o = h.place(req).await;
    h.pay(o.id, "tok_captureAnswerLost").await.unwrap_err();
    h.gateway.fail_next(u32::MAX); // the gateway is unreachable for now
    h.clock.advance_ms(60_000);
    let before = h.gateway.lookups();
    wait_until("expiry or the settler asked the gateway", || {
        h.gateway.lookups() > before
    })
    .await;
    let open = h.engine.order(o.id).await.unwrap();
    assert_eq!(open.status, OrderStatus::PaymentPending);
    assert_eq!(
        h.pair("a", "w").await.reserved,
        3,
        "no stock released under an open payment"
    );

    h.gateway.fail_next(0);
    h.clock.advance_ms(SETTLE_DELAY_MS_MAX);
    wait_for_status(&h.engine, o.id, OrderStatus::Confirmed).await;
    let paid = h.engine.order(o.id).await.unwrap();
    assert!(paid.history.iter().all(|t| t.to != OrderStatus::Cancelled));
    assert_paid_once(&h, &paid);
    assert_eq!(h.pair("a", "w").await.reserved, 3);
    h.assert_replay_equals_live().await;
}

/// Defect 5: nobody retries, nobody restarts: the background settler settles on its own clock.
#[tokio::test]
async fn the_settler_settles_a_lost_capture_without_a_retry() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 1)]).await;
    let o = h.place(new_order("u", &[("a", 1, "5.00")])).await;
    h.pay(o.id, "tok_captureAnswerLost").await.unwrap_err();
    assert_eq!(queued(&h, o.id), Some((Some(Millis(T0.0 + 1_000)), 0)));
    h.clock.advance_ms(1_000);
    wait_for_status(&h.engine, o.id, OrderStatus::Confirmed).await;
    assert_paid_once(&h, &h.engine.order(o.id).await.unwrap());
    wait_until("the settler forgot the order", || queued(&h, o.id).is_none()).await;
    h.assert_replay_equals_live().await;
}

/// The settler backs off exponentially while the gateway stays down, then settles once.
#[tokio::test]
async fn the_settler_backs_off_while_the_gateway_is_down() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 1)]).await;
    let o = h.place(new_order("u", &[("a", 1, "5.00")])).await;
    h.pay(o.id, "tok_captureAnswerLost").await.unwrap_err();
    h.gateway.fail_next(3);
    let mut now = T0.0;
    for (tries, wait_ms) in [(1, 1_000), (2, 1_000), (3, 2_000)] {
        h.clock.advance_ms(wait_ms);
        now += wait_ms;
        let next = Millis(now + 1_000 * (1 << (tries - 1)));
        wait_until("a failed try rescheduled", || {
            queued(&h, o.id) == Some((Some(next), tries))
        })
        .await;
        let open = h.engine.order(o.id).await.unwrap();
        assert_eq!(open.payment.attempts[0].status, AttemptStatus::Pending);
    }
    h.clock.advance_ms(4_000);
    wait_for_status(&h.engine, o.id, OrderStatus::Confirmed).await;
    assert_paid_once(&h, &h.engine.order(o.id).await.unwrap());
    h.assert_replay_equals_live().await;
}

/// Defect 5: a refund whose answer is lost stays pending, and the retried refund settles it
/// and answers (it used to be 409 "another refund is in progress"), refunding once.
#[tokio::test]
async fn a_retried_refund_settles_the_pending_one_and_refunds_once() {
    let h = Harness::new().await;
    let o = delivered(&h, "tok_refundAnswerLost").await;
    let err = h.engine.order_request(o.id, refund_of("5.00"), None).await.unwrap_err();
    assert!(matches!(err, EngineError::OutcomeUnknown(_)), "{err}");
    let open = h.engine.order(o.id).await.unwrap();
    assert_eq!(open.refunds[0].status.as_str(), "pending");
    let done = h.engine.order_request(o.id, refund_of("5.00"), None).await.unwrap();
    assert_eq!(done.created.as_deref(), Some(done.order.refund_id(0).as_str()));
    assert_eq!(done.order.refunds.len(), 1);
    assert_eq!(done.order.status, OrderStatus::PartiallyRefunded);
    assert_eq!(done.order.payment.refunded, money("5.00"));
    assert_eq!((h.gateway.refunds(), h.gateway.refunded_amount()), (1, money("5.00")));

    // Another refund asked while one is pending settles that one first, then runs.
    h.engine.order_request(o.id, refund_of("3.00"), None).await.unwrap_err();
    let other = h.engine.order_request(o.id, refund_of("2.00"), None).await.unwrap_err();
    assert!(matches!(other, EngineError::OutcomeUnknown(_)), "{other}");
    let settled = h.engine.order(o.id).await.unwrap();
    assert_eq!(settled.refunds[1].status.as_str(), "succeeded");
    assert_eq!(settled.refunds[2].status.as_str(), "pending");
    let last = h.engine.order_request(o.id, refund_of("2.00"), None).await.unwrap();
    assert_eq!(last.order.payment.refunded, money("10.00"));
    assert_eq!((h.gateway.refunds(), h.gateway.refunded_amount()), (3, money("10.00")));
    assert!(last.order.payment.refunded <= last.order.payment.captured);
    h.assert_replay_equals_live().await;
}

/// Defect 5: a cancel whose refund answer is lost; the retried cancel finishes it.
#[tokio::test]
async fn a_retried_cancel_settles_its_pending_refund() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 2)]).await;
    let o = h.place(new_order("u", &[("a", 2, "3.00")])).await;
    h.pay(o.id, "tok_refundAnswerLost").await.unwrap();
    let cancel = || OrderRequest::Cancel {
        reason: "changed mind".into(),
    };
    let err = h.engine.order_request(o.id, cancel(), None).await.unwrap_err();
    assert!(matches!(err, EngineError::OutcomeUnknown(_)), "{err}");
    assert_eq!(h.engine.order(o.id).await.unwrap().status, OrderStatus::Confirmed);
    assert_eq!(h.pair("a", "w").await.reserved, 2);
    let done = h.engine.order_request(o.id, cancel(), None).await.unwrap();
    assert_eq!(done.order.status, OrderStatus::Cancelled);
    assert_eq!(done.order.payment.refunded, done.order.payment.captured);
    assert_eq!((h.gateway.refunds(), h.gateway.refunded_amount()), (1, o.total_amount));
    assert_eq!(h.pair("a", "w").await.reserved, 0);
    h.assert_replay_equals_live().await;
}

/// Defect 11: a refund the gateway declines is a decline (402), not a gateway failure (503).
#[tokio::test]
async fn a_declined_refund_is_a_decline() {
    let h = Harness::new().await;
    let o = delivered(&h, "tok_refundDeclined").await;
    let out = h.engine.order_request(o.id, refund_of("5.00"), None).await.unwrap();
    assert_eq!(out.declined.as_deref(), Some("refund_declined"));
    assert_eq!(out.order.refunds[0].status.as_str(), "failed");
    assert_eq!(out.order.status, OrderStatus::Delivered);
    // A cancellation whose refund is declined: the order stays paid and keeps its stock.
    let paid = h.place(new_order("u", &[("a", 1, "10.00")])).await;
    h.pay(paid.id, "tok_refundDeclined").await.unwrap();
    let cancel = OrderRequest::Cancel { reason: "x".into() };
    let out = h.engine.order_request(paid.id, cancel, None).await.unwrap();
    assert_eq!(out.declined.as_deref(), Some("refund_declined"));
    assert_eq!(out.order.status, OrderStatus::Confirmed);
    assert_eq!(h.pair("a", "w").await.reserved, 1);
    assert_eq!((h.gateway.refunds(), h.gateway.refunded_amount()), (0, money("0")));
    h.assert_replay_equals_live().await;
}
