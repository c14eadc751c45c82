//! The simulated gateway's fault tokens through the API (docs/API.md, "Test tokens"): lost and
//! late answers are 503 and never charge or refund twice; a retry settles and answers; a
//! declined refund is 402; after a restart or the background settler settled an outcome, the
//! request's retry with the same `Idempotency-Key` replays it (200 or 402), not 409.

use crate::support::{Resp, TestApp};
use axum::http::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::str::FromStr;

/// One warehouse with 10 units of `sku-1`.
async fn stocked(t: &TestApp) {
    t.warehouse("w", 40.0, -75.0, 0).await;
    t.stock("sku-1", "w", 10).await;
}

/// Places an order of 2 units (20.00) and returns its id.
async fn place(t: &TestApp) -> String {
    let o = t.order("u1", &[("sku-1", 2)]).await.ok(201);
    o["id"].as_str().unwrap().to_string()
}

async fn post_keyed(t: &TestApp, uri: &str, body: Value, key: &str) -> Resp {
    t.raw(Method::POST, uri, &body.to_string(), &[("idempotency-key", key)])
        .await
}

async fn pay(t: &TestApp, id: &str, token: &str, key: &str) -> Resp {
    post_keyed(t, &format!("/v1/orders/{id}/payments"), json!({"token": token}), key).await
}

async fn order(t: &TestApp, id: &str) -> Value {
    t.get(&format!("/v1/orders/{id}")).await.ok(200)
}

fn amount(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

/// A 503 that invites a retry.
#[track_caller]
fn unknown_outcome(r: &Resp) {
    r.problem(503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
}

/// Exact money of a paid order: one captured attempt; captured = total, here and at the gateway.
fn assert_paid_once(t: &TestApp, o: &Value) {
    let attempts = o["payment"]["attempts"].as_array().unwrap();
    let captured = attempts.iter().filter(|a| a["status"] == "captured").count();
    assert_eq!(captured, 1, "{attempts:?}");
    assert_eq!(amount(&o["payment"]["captured_amount"]), amount(&o["total_amount"]));
    assert_eq!(t.gateway.captures(), 1);
    assert_eq!(t.gateway.captured_amount(), amount(&o["total_amount"]));
}

/// Waits (bounded) until the order has `status`, woken by each durable record.
async fn wait_for_status(t: &TestApp, id: &str, status: &str) {
    let (mut rx, _) = t.engine.subscribe();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if order(t, id).await["status"] == status {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("feed closed: {e}"),
            Err(_) => panic!("order {id} did not become {status} in time"),
        }
    }
}

/// Fulfils, ships and delivers every shipment of a paid order.
async fn deliver(t: &TestApp, id: &str) {
    let o = t
        .post(&format!("/v1/orders/{id}/fulfillments"), json!({}))
        .await
        .ok(200);
    for s in o["shipments"].as_array().unwrap() {
        let base = format!("/v1/orders/{id}/shipments/{}", s["id"].as_str().unwrap());
        t.post(&format!("{base}/ship"), json!({})).await.ok(200);
        t.post(&format!("{base}/deliver"), json!({})).await.ok(200);
    }
}

#[tokio::test]
async fn capture_answer_lost_is_503_and_the_retry_is_paid_with_one_capture() {
    let t = TestApp::new().await;
    stocked(&t).await;
    let id = place(&t).await;
    unknown_outcome(&pay(&t, &id, "tok_captureAnswerLost", "pay-1").await);
    let open = order(&t, &id).await;
    assert_eq!(open["status"], "payment_pending");
    assert_eq!(open["payment"]["attempts"][0]["status"], "pending");
    assert_eq!(t.pair("sku-1", "w").await["reserved"], 2);

    let paid = pay(&t, &id, "tok_captureAnswerLost", "pay-1").await;
    let body = paid.ok(200);
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["payment"]["attempts"].as_array().unwrap().len(), 1);
    assert_paid_once(&t, &body);
    let again = pay(&t, &id, "tok_captureAnswerLost", "pay-1").await;
    assert_eq!((again.status, &again.bytes), (paid.status, &paid.bytes));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(t.gateway.captures(), 1);
}

#[tokio::test]
async fn authorize_timeout_is_503_and_the_retry_is_paid_with_one_capture() {
    let t = TestApp::with_config(Vec::new(), |c| c.gateway_timeout_ms = 50).await;
    stocked(&t).await;
    let id = place(&t).await;
    let uri = format!("/v1/orders/{id}/payments");
    let body = json!({"token": "tok_authorizeTimeout"});
    unknown_outcome(&t.post(&uri, body.clone()).await);
    assert_eq!(order(&t, &id).await["payment"]["attempts"][0]["status"], "pending");
    let paid = t.post(&uri, body).await.ok(200);
    assert_eq!(paid["status"], "confirmed");
    assert_paid_once(&t, &paid);
}

#[tokio::test]
async fn refund_answer_lost_is_503_and_the_retried_refund_is_201_once() {
    let t = TestApp::new().await;
    stocked(&t).await;
    let id = place(&t).await;
    pay(&t, &id, "tok_refundAnswerLost", "pay-1").await.ok(200);
    deliver(&t, &id).await;
    let uri = format!("/v1/orders/{id}/refunds");
    let body = json!({"amount": "7.50", "reason": "scratched"});
    unknown_outcome(&post_keyed(&t, &uri, body.clone(), "refund-1").await);
    assert_eq!(order(&t, &id).await["refunds"][0]["status"], "pending");

    let done = post_keyed(&t, &uri, body.clone(), "refund-1").await;
    let r = done.ok(201);
    assert_eq!(
        (r["status"].as_str(), r["amount"].as_str()),
        (Some("succeeded"), Some("7.50"))
    );
    assert_eq!(r["order"]["status"], "partially_refunded");
    assert_eq!(r["order"]["refunds"].as_array().unwrap().len(), 1);
    let again = post_keyed(&t, &uri, body, "refund-1").await;
    assert_eq!((again.status, &again.bytes), (done.status, &done.bytes));
    assert_eq!(t.gateway.refunds(), 1);
    assert_eq!(t.gateway.refunded_amount(), Decimal::new(750, 2));
    let o = order(&t, &id).await;
    assert_eq!(amount(&o["payment"]["refunded_amount"]), Decimal::new(750, 2));
}

#[tokio::test]
async fn a_declined_refund_is_402_payment_declined_and_replays() {
    let t = TestApp::new().await;
    stocked(&t).await;
    let delivered = place(&t).await;
    pay(&t, &delivered, "tok_refundDeclined", "pay-1").await.ok(200);
    deliver(&t, &delivered).await;
    let uri = format!("/v1/orders/{delivered}/refunds");
    let r = t
        .twice(Method::POST, &uri, r#"{"amount": "5.00"}"#, "refund-1", 402)
        .await;
    let p = r.problem(402, "payment_declined");
    assert_eq!(p["order_status"], "delivered");
    assert_eq!(order(&t, &delivered).await["refunds"][0]["status"], "failed");

    // A cancellation's refund declined: the order stays paid and keeps its stock.
    let paid = place(&t).await;
    pay(&t, &paid, "tok_refundDeclined", "pay-2").await.ok(200);
    let r = post_keyed(&t, &format!("/v1/orders/{paid}/cancel"), json!({}), "cancel-1").await;
    assert_eq!(r.problem(402, "payment_declined")["order_status"], "confirmed");
    assert_eq!(t.pair("sku-1", "w").await["reserved"], 2);
    assert_eq!((t.gateway.refunds(), t.gateway.refunded_amount()), (0, Decimal::ZERO));
}

/// Defect 11: the restart settled the payment; the client's retry replays 200 (captured) or
/// 402 (declined) instead of 409 "only a payment_pending order can be paid".
#[tokio::test]
async fn a_retried_payment_replays_the_outcome_a_restart_settled() {
    let t = TestApp::new().await;
    stocked(&t).await;
    // The gateway authorizes (or declines) but the answer is lost: the attempts stay pending.
    let captured = place(&t).await;
    t.gateway.lose_next_answers(1);
    unknown_outcome(&pay(&t, &captured, "tok_visa", "pay-c").await);
    let declined = place(&t).await;
    t.gateway.lose_next_answers(1);
    unknown_outcome(&pay(&t, &declined, "tok_chargeDeclined", "pay-d").await);

    let t = t.restart().await;
    wait_for_status(&t, &captured, "confirmed").await;
    wait_for_status(&t, &declined, "cancelled").await;
    let paid = pay(&t, &captured, "tok_visa", "pay-c").await.ok(200);
    assert_eq!(paid["status"], "confirmed");
    assert_paid_once(&t, &paid);
    let again = pay(&t, &captured, "tok_visa", "pay-c").await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let r = pay(&t, &declined, "tok_chargeDeclined", "pay-d").await;
    assert_eq!(r.problem(402, "payment_declined")["order_status"], "cancelled");
    // Another request (another key) is a new payment of a paid order: 409.
    pay(&t, &captured, "tok_visa", "pay-other")
        .await
        .problem(409, "invalid_transition");
    assert_eq!(t.gateway.captures(), 1);
}

/// Defect 11 for a cancellation, settled by the background settler (no restart, no retry).
#[tokio::test]
async fn a_retried_cancel_replays_the_outcome_the_settler_settled() {
    let t = TestApp::new().await;
    stocked(&t).await;
    let id = place(&t).await;
    let paid = pay(&t, &id, "tok_refundAnswerLost", "pay-1").await.ok(200);
    let uri = format!("/v1/orders/{id}/cancel");
    unknown_outcome(&post_keyed(&t, &uri, json!({"reason": "changed mind"}), "cancel-1").await);
    t.clock.advance_ms(oms::engine::SETTLE_DELAY_MS_MIN);
    wait_for_status(&t, &id, "cancelled").await;
    let o = post_keyed(&t, &uri, json!({"reason": "changed mind"}), "cancel-1")
        .await
        .ok(200);
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["payment"]["refunded_amount"], paid["total_amount"]);
    assert_eq!(
        (t.gateway.refunds(), t.gateway.refunded_amount()),
        (1, amount(&paid["total_amount"]))
    );
    assert_eq!(t.pair("sku-1", "w").await["reserved"], 0);
}

/// Defect 11 for a cancellation settled by a restart.
#[tokio::test]
async fn a_retried_cancel_replays_the_outcome_a_restart_settled() {
    let t = TestApp::new().await;
    stocked(&t).await;
    let id = place(&t).await;
    let paid = pay(&t, &id, "tok_visa", "pay-1").await.ok(200);
    let uri = format!("/v1/orders/{id}/cancel");
    t.gateway.lose_next_answers(1); // the refund is made, its answer lost
    unknown_outcome(&post_keyed(&t, &uri, json!({}), "cancel-1").await);
    let t = t.restart().await;
    wait_for_status(&t, &id, "cancelled").await;
    let o = post_keyed(&t, &uri, json!({}), "cancel-1").await.ok(200);
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["payment"]["refunded_amount"], paid["total_amount"]);
    assert_eq!(
        (t.gateway.refunds(), t.gateway.refunded_amount()),
        (1, amount(&paid["total_amount"]))
    );
}
