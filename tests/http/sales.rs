//! Flash sales through the HTTP API: the race of many clients for a limited drop, windows
//! driven by the manual clock, prices, limits given back by cancellation (whole or partial) and
//! expiry, the admission rate, the sale's events, and what survives a restart.

use crate::support::*;
use axum::http::Method;
use oms::domain::Entry;
use oms::domain::sale::SaleMark;
use serde_json::{Value, json};
use std::time::Duration;

/// `T0` plus `s` seconds, as RFC 3339.
fn at(s: u64) -> String {
    oms::domain::Millis(T0.0 + s * 1000).rfc3339()
}

async fn shop(app: &TestApp, units: i64) {
    app.warehouse("w1", 40.0, -74.0, 1).await;
    app.stock("drop", "w1", units).await;
}

async fn sale(app: &TestApp, id: &str, body: Value) -> Value {
    let r = app.put(&format!("/v1/sales/{id}"), body).await;
    assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

/// Waits (with a deadline, yielding) until the log holds a `SaleMarked` with `mark`.
async fn wait_for_mark(app: &TestApp, mark: SaleMark) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, records) = app.engine.read_log(1, u64::MAX, 10_000).unwrap();
        if records
            .iter()
            .any(|c| matches!(&c.record.entry, Entry::SaleMarked { mark: m, .. } if *m == mark))
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {mark:?} mark recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_as_twenty_users_race_and_exactly_forty_units_sell() {
    let app = TestApp::new().await;
    shop(&app, 100).await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(0), "per_customer_limit": 2}),
    )
    .await;
    let mut tasks = Vec::new();
    for client in 0..200 {
        let app = app.app.clone();
        let body = order_body(&format!("user-{}", client % 20), &[("drop", 1)]).to_string();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post("/v1/orders")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }));
    }
    let mut per_user = std::collections::BTreeMap::<String, u64>::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => {
                *per_user
                    .entry(body["user_id"].as_str().unwrap().to_string())
                    .or_default() += 1
            }
            409 => {
                assert_eq!(body["code"], "limit_exceeded", "{body}");
                assert_eq!(
                    (body["limit"].as_u64(), body["scope"].as_str()),
                    (Some(2), Some("customer"))
                );
                assert_eq!(body["held"], 2, "refused only at the limit: {body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(per_user.len(), 20, "every user got in");
    assert!(per_user.values().all(|n| *n == 2), "{per_user:?}");
    assert_eq!(app.pair("drop", "w1").await["reserved"], 40);
    let s = app.get("/v1/sales/s1").await.ok(200);
    assert_eq!(
        (s["units_reserved"].as_u64(), s["buyers"].as_u64()),
        (Some(40), Some(20))
    );
    assert_eq!(
        (s["orders_placed"].as_u64(), s["available"].as_u64()),
        (Some(40), Some(60))
    );
    assert_eq!(s["status"], "live");
    // Replay builds the same books as the live desk.
    let live = app.engine.export_state().await.unwrap();
    assert_eq!(live.digest(), app.engine.replay_state().unwrap().digest());
}

#[tokio::test]
async fn the_window_opens_and_closes_by_the_clock_and_is_recorded() {
    let app = TestApp::new().await;
    shop(&app, 10).await;
    let s = sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(60), "ends_at": at(120)}),
    )
    .await;
    assert_eq!(
        (s["id"].as_str(), s["ends_at"].as_str()),
        (Some("s1"), Some(at(120).as_str()))
    );
    let early = app.order("u1", &[("drop", 1)]).await.problem(409, "sale_not_started");
    assert_eq!(
        (early["starts_at"].as_str(), early["sale_id"].as_str()),
        (Some(at(60).as_str()), Some("s1"))
    );
    assert_eq!(app.get("/v1/sales/s1").await.ok(200)["status"], "scheduled");
    app.clock.advance_ms(60_000);
    app.order("u1", &[("drop", 1)]).await.ok(201);
    wait_for_mark(&app, SaleMark::Started).await;
    app.clock.advance_ms(60_000);
    let late = app.order("u1", &[("drop", 1)]).await.problem(409, "sale_ended");
    assert_eq!(late["ended_at"].as_str(), Some(at(120).as_str()));
    wait_for_mark(&app, SaleMark::Ended).await;
    let s = app.get("/v1/sales/s1").await.ok(200);
    assert_eq!(s["status"], "ended");
    assert_eq!(
        (s["started_at"].as_str(), s["ended_at"].as_str()),
        (Some(at(60).as_str()), Some(at(120).as_str()))
    );
    // An ended sale takes no change.
    let body = json!({"sku": "drop", "starts_at": at(60), "ends_at": at(500)});
    app.put("/v1/sales/s1", body).await.problem(409, "sale_ended");
}

#[tokio::test]
async fn the_sale_price_is_the_price_charged() {
    let app = TestApp::new().await;
    shop(&app, 10).await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(0), "price": "10.00", "currency": "USD"}),
    )
    .await;
    app.order("u1", &[("drop", 1)]).await.ok(201);
    let mut cheap = order_body("u1", &[("drop", 1)]);
    cheap["items"][0]["unit_price"] = json!("9.99");
    let p = app.post("/v1/orders", cheap).await.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "items[0].unit_price");
}

#[tokio::test]
async fn cancelled_and_expired_orders_give_units_back() {
    let app = TestApp::new().await;
    shop(&app, 10).await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(0), "per_customer_limit": 2, "per_order_limit": 2}),
    )
    .await;
    let too_many = app.order("u1", &[("drop", 3)]).await.problem(409, "limit_exceeded");
    assert_eq!(
        (too_many["scope"].as_str(), too_many["limit"].as_u64()),
        (Some("order"), Some(2))
    );
    let first = app.order("u1", &[("drop", 2)]).await.ok(201);
    let full = app.order("u1", &[("drop", 1)]).await.problem(409, "limit_exceeded");
    assert_eq!((full["held"].as_u64(), full["requested"].as_u64()), (Some(2), Some(1)));
    let id = first["id"].as_str().unwrap();
    app.post(&format!("/v1/orders/{id}/cancel"), json!({"reason": "changed my mind"}))
        .await
        .ok(200);
    let second = app.order("u1", &[("drop", 2)]).await.ok(201);
    // Expiry is a cancellation too: let the reservation lapse.
    app.clock.advance_ms(16 * 60 * 1000);
    let id = second["id"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/v1/orders/{id}")).await.ok(200)["status"] != "cancelled" {
        assert!(tokio::time::Instant::now() < deadline, "the reservation did not expire");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.order("u1", &[("drop", 2)]).await.ok(201);
    app.order("u1", &[("drop", 1)]).await.problem(409, "limit_exceeded");
}

/// A partial cancellation gives its units of the sale's SKU back to the customer's allowance
/// (the book counts units, not orders), live, after a replay of the log and after a snapshot;
/// a later whole cancellation gives back only what the order still held.
#[tokio::test]
async fn a_partial_cancel_gives_its_units_back_live_and_in_replay() {
    let app = TestApp::new().await;
    shop(&app, 10).await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(0), "per_customer_limit": 3}),
    )
    .await;
    let first = app.order("u1", &[("drop", 3)]).await.ok(201);
    let base = format!("/v1/orders/{}", first["id"].as_str().unwrap());
    let two = json!({"items": [{"sku": "drop", "quantity": 2}]});
    app.post(&format!("{base}/cancel"), two).await.ok(200);
    let s = app.get("/v1/sales/s1").await.ok(200);
    assert_eq!((s["buyers"].as_u64(), s["units_reserved"].as_u64()), (Some(1), Some(1)));
    app.order("u1", &[("drop", 2)]).await.ok(201);
    let full = app.order("u1", &[("drop", 1)]).await.problem(409, "limit_exceeded");
    assert_eq!(full["held"].as_u64(), Some(3));
    // Replayed from the log: the same holdings.
    let app = app.restart().await;
    let full = app.order("u1", &[("drop", 1)]).await.problem(409, "limit_exceeded");
    assert_eq!(full["held"].as_u64(), Some(3));
    // The first order's last unit: a whole cancellation gives back 1, not the 3 it was placed with.
    app.post(&format!("{base}/cancel"), json!({})).await.ok(200);
    let s = app.get("/v1/sales/s1").await.ok(200);
    assert_eq!(s["units_reserved"].as_u64(), Some(2));
    let engine = app.engine.clone();
    tokio::task::spawn_blocking(move || engine.snapshot_now())
        .await
        .unwrap()
        .unwrap();
    let app = app.restart().await;
    app.order("u1", &[("drop", 1)]).await.ok(201);
    let full = app.order("u1", &[("drop", 1)]).await.problem(409, "limit_exceeded");
    assert_eq!(full["held"].as_u64(), Some(3));
    let s = app.get("/v1/sales/s1").await.ok(200);
    assert_eq!(
        (s["units_reserved"].as_u64(), s["orders_placed"].as_u64()),
        (Some(3), Some(3))
    );
}

#[tokio::test]
async fn holdings_survive_a_restart() {
    let app = TestApp::new().await;
    shop(&app, 10).await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(0), "per_customer_limit": 1}),
    )
    .await;
    app.order("u1", &[("drop", 1)]).await.ok(201);
    // A snapshot in the middle: the books must come back from it and from the log after it.
    let engine = app.engine.clone();
    tokio::task::spawn_blocking(move || engine.snapshot_now())
        .await
        .unwrap()
        .unwrap();
    app.order("u2", &[("drop", 1)]).await.ok(201);
    let app = app.restart().await;
    app.order("u1", &[("drop", 1)]).await.problem(409, "limit_exceeded");
    app.order("u2", &[("drop", 1)]).await.problem(409, "limit_exceeded");
    app.order("u3", &[("drop", 1)]).await.ok(201);
    let s = app.get("/v1/sales/s1").await.ok(200);
    assert_eq!((s["buyers"].as_u64(), s["units_reserved"].as_u64()), (Some(3), Some(3)));
}

#[tokio::test]
async fn admission_is_rate_limited_fairly_with_retry_after() {
    let app = TestApp::new().await;
    shop(&app, 10).await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(0), "admission_per_second": 2}),
    )
    .await;
    app.order("u1", &[("drop", 1)]).await.ok(201);
    // Hammering does not get a client a second admission in the same second.
    let again = app.order("u1", &[("drop", 1)]).await.problem(429, "rate_limited");
    assert_eq!(again["retry_after_seconds"], 1);
    let again = app.order("u1", &[("drop", 1)]).await;
    assert_eq!(again.header("retry-after"), Some("1"));
    app.order("u2", &[("drop", 1)]).await.ok(201);
    app.order("u3", &[("drop", 1)]).await.problem(429, "rate_limited");
    app.clock.advance_ms(1000);
    app.order("u3", &[("drop", 1)]).await.ok(201);
}

#[tokio::test]
async fn selling_the_last_unit_records_sold_out() {
    let app = TestApp::new().await;
    shop(&app, 2).await;
    sale(&app, "s1", json!({"sku": "drop", "starts_at": at(0)})).await;
    app.order("u1", &[("drop", 2)]).await.ok(201);
    wait_for_mark(&app, SaleMark::SoldOut).await;
    // The mark is in the log; the sale's view applies it right after it is durable.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = app.get("/v1/sales/s1").await.ok(200);
        if s["sold_out_at"].is_string() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sold out never shown: {s}");
        tokio::task::yield_now().await;
    }
    let list = app.get("/v1/sales").await.ok(200);
    assert_eq!(list["data"][0]["id"], "s1");
    assert!(list["next_cursor"].is_null());
}

#[tokio::test]
async fn sale_definitions_are_checked() {
    let app = TestApp::new().await;
    sale(
        &app,
        "s1",
        json!({"sku": "drop", "starts_at": at(10), "ends_at": at(20)}),
    )
    .await;
    let p = app
        .put(
            "/v1/sales/s1",
            json!({"sku": "other", "starts_at": at(10), "ends_at": at(20)}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "sku");
    let p = app
        .put(
            "/v1/sales/s2",
            json!({"sku": "drop", "starts_at": at(15), "ends_at": at(30)}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "starts_at");
    let p = app
        .put(
            "/v1/sales/s3",
            json!({"sku": "x", "starts_at": "yesterday", "per_customer_limit": 0, "price": "1"}),
        )
        .await
        .problem(422, "validation_failed");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["starts_at", "per_customer_limit", "currency"]);
    app.get("/v1/sales/nope").await.problem(404, "not_found");
    // A change answers 200; the same PUT with an Idempotency-Key is replayed.
    let body = json!({"sku": "drop", "starts_at": at(10), "ends_at": at(25)}).to_string();
    app.twice(Method::PUT, "/v1/sales/s1", &body, "k1", 200).await;
}
