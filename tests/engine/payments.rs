//! Payments through the simulated gateway: declines cancel and release; lost answers and
//! crashes between the gateway call and the log record are settled without charging twice.

use crate::expiry::wait_for_status;
use crate::support::*;
use oms::domain::OrderStatus;
use oms::domain::order::AttemptStatus;
use oms::engine::{Engine, EngineError, ManualClock, SimulatedGateway};
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
    assert!(matches!(err, EngineError::Unavailable(_)), "{err}");
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
        matches!(&err, EngineError::Unavailable(m) if m.contains("timed out")),
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
