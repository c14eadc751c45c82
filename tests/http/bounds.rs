//! Bounds seen through the API: an idempotent response is replayed for 24 hours and forgotten
//! after, the table's size is in `/metrics`, and a refused adjustment of a SKU that was never
//! stocked leaves no inventory behind.

use crate::support::{TestApp, metric_value};
use axum::http::Method;
use oms::engine::RETENTION_MS;
use serde_json::json;

const ADJUST: &str = "/v1/inventory/adjustments";

#[tokio::test]
async fn an_idempotent_response_is_replayed_for_24_hours_then_forgotten() {
    let t = TestApp::new().await;
    t.warehouse("east", 40.7, -74.0, 1).await;
    let body = json!({"sku": "sku-1", "warehouse_id": "east", "delta": 1, "reason": "receiving"}).to_string();
    let key = [("idempotency-key", "adj-1")];
    assert_eq!(t.raw(Method::POST, ADJUST, &body, &key).await.ok(200)["on_hand"], 1);
    let metrics = String::from_utf8(t.get("/metrics").await.bytes).unwrap();
    assert_eq!(metric_value(&metrics, "oms_idempotency_keys"), Some(1.0), "{metrics}");

    t.clock.advance_ms(RETENTION_MS);
    let again = t.raw(Method::POST, ADJUST, &body, &key).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"), "kept 24 hours");
    assert_eq!(again.ok(200)["on_hand"], 1);

    t.clock.advance_ms(1);
    let later = t.raw(Method::POST, ADJUST, &body, &key).await;
    assert_eq!(later.header("idempotent-replayed"), None, "forgotten after 24 hours");
    assert_eq!(later.ok(200)["on_hand"], 2, "so the request ran again");
    let metrics = String::from_utf8(t.get("/metrics").await.bytes).unwrap();
    assert_eq!(metric_value(&metrics, "oms_idempotency_keys"), Some(1.0), "{metrics}");
    assert_eq!(
        metric_value(&metrics, "oms_idempotency_evicted_early_total"),
        Some(0.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_refused_adjustment_leaves_no_inventory_behind() {
    let t = TestApp::new().await;
    t.warehouse("east", 40.7, -74.0, 1).await;
    t.post(
        ADJUST,
        json!({"sku": "ghost", "warehouse_id": "east", "delta": -5, "reason": "count"}),
    )
    .await
    .problem(409, "insufficient_stock");
    t.get("/v1/inventory/ghost").await.problem(404, "not_found");
    t.get("/v1/inventory/ghost/east").await.problem(404, "not_found");
}
