//! Arbitrary request bodies never make the server fail: every POST, PUT and PATCH, sent random
//! bytes, random JSON, or a valid body with one field replaced, removed or added, answers
//! with a success or a client error in `problem+json`, never a 5xx (a panic in a handler or
//! in the task carrying a request out shows up as one) and never a hang.
//!
//! Property tests with bounded case counts, so CI stays fast; the app state carries over from
//! case to case (orders placed by one case are there for the next), which is what a server
//! sees too.

use crate::support::{TestApp, order_body};
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// Field names the API knows, so generated objects hit real fields, and a few it does not.
const FIELDS: &[&str] = &[
    "sku",
    "warehouse_id",
    "delta",
    "reason",
    "on_hand",
    "name",
    "country",
    "lat",
    "lon",
    "priority",
    "carrier",
    "user_id",
    "currency",
    "items",
    "quantity",
    "unit_price",
    "discount",
    "tax_amount",
    "shipping_amount",
    "discount_amount",
    "shipping_address",
    "billing_address",
    "line1",
    "city",
    "reservation_ttl_seconds",
    "token",
    "tracking_number",
    "return_id",
    "amount",
    "restock",
    "",
    "x",
];

/// Strings that sit on edges of what the API parses.
const EDGE_STRINGS: &[&str] = &[
    "",
    "0",
    "-1",
    "1e400",
    "0.000000000000000000000000001",
    "99999999999999999999999999999999999999999",
    "NaN",
    "USD",
    "JPY",
    "east",
    "sku-1",
    "tok_chargeDeclined",
    "\u{0}",
    "é",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(EDGE_STRINGS).prop_map(|s| Value::String(s.to_string())),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6)
                .prop_map(|fields| { Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()) }),
        ]
    })
}

/// One change to a valid body.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, Value),
    Remove(usize),
    Add(&'static str, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), json_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        any::<usize>().prop_map(Edit::Remove),
        (prop::sample::select(FIELDS), json_value()).prop_map(|(k, v)| Edit::Add(k, v)),
    ]
}

fn apply(mut body: Map<String, Value>, edit: &Edit) -> Map<String, Value> {
    let keys: Vec<String> = body.keys().cloned().collect();
    match edit {
        Edit::Replace(i, v) if !keys.is_empty() => {
            body.insert(keys[i % keys.len()].clone(), v.clone());
        }
        Edit::Remove(i) if !keys.is_empty() => {
            body.remove(&keys[i % keys.len()]);
        }
        Edit::Add(k, v) => {
            body.insert(k.to_string(), v.clone());
        }
        _ => {}
    }
    body
}

/// A body to send.
#[derive(Debug, Clone)]
enum Input {
    Bytes(Vec<u8>),
    Json(Value),
    Edited(Vec<Edit>),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Input::Bytes),
        json_value().prop_map(Input::Json),
        prop::collection::vec(edit(), 1..4).prop_map(Input::Edited),
    ]
}

/// Every mutation route with a valid body for it, on an app with an order that has a
/// shipment and a return.
async fn routes(t: &TestApp) -> Vec<(Method, String, Value)> {
    t.warehouse("east", 40.7, -74.0, 1).await;
    t.stock("sku-1", "east", 1_000).await;
    let o = t.order("u1", &[("sku-1", 2)]).await.ok(201);
    let id = o["id"].as_str().unwrap().to_string();
    let base = format!("/v1/orders/{id}");
    t.post(&format!("{base}/payments"), json!({"token": "tok_visa"}))
        .await
        .ok(200);
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    let sid = o["shipments"][0]["id"].as_str().unwrap().to_string();
    t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
    t.post(&format!("{base}/shipments/{sid}/deliver"), json!({}))
        .await
        .ok(200);
    let r = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "x"}),
        )
        .await
        .ok(201);
    let rid = r["id"].as_str().unwrap().to_string();
    let post = |path: String, body: Value| (Method::POST, path, body);
    vec![
        (
            Method::PUT,
            "/v1/warehouses/w-fuzz".into(),
            json!({"name": "W", "country": "US", "lat": 1.5, "lon": 2.5, "priority": 1}),
        ),
        post(
            "/v1/inventory/adjustments".into(),
            json!({"sku": "sku-1", "warehouse_id": "east", "delta": 1, "reason": "r"}),
        ),
        (Method::PUT, "/v1/inventory/sku-2/east".into(), json!({"on_hand": 5})),
        post("/v1/orders".into(), order_body("u2", &[("sku-1", 1)])),
        post(format!("{base}/payments"), json!({"token": "tok_visa"})),
        (
            Method::PATCH,
            base.clone(),
            json!({"note": "n", "tags": ["vip"], "metadata": {"k": "v", "gone": null}}),
        ),
        post(format!("{base}/cancel"), json!({"reason": "x"})),
        post(format!("{base}/fulfillments"), json!({})),
        post(
            format!("{base}/shipments/{sid}/ship"),
            json!({"carrier": "ups", "tracking_number": "1Z"}),
        ),
        post(format!("{base}/shipments/{sid}/deliver"), json!({})),
        post(
            format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "x"}),
        ),
        post(format!("{base}/returns/{rid}/approve"), json!({})),
        post(format!("{base}/returns/{rid}/reject"), json!({"reason": "x"})),
        post(
            format!("{base}/returns/{rid}/receive"),
            json!({"warehouse_id": "east", "restock": true}),
        ),
        post(
            format!("{base}/refunds"),
            json!({"amount": "1.00", "return_id": rid, "reason": "x"}),
        ),
    ]
}

/// Sends `body` and checks the answer: a success, or a client error as a problem document.
async fn check(t: &TestApp, method: &Method, uri: &str, body: Vec<u8>) {
    let req = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), t.app.clone().oneshot(req))
        .await
        .expect("answered in time")
        .unwrap();
    let status = resp.status();
    let problem = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(status.as_u16() < 500, "{method} {uri}: {status} {text}");
    if status.is_client_error() {
        assert!(problem, "{method} {uri}: {status} without problem+json: {text}");
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(doc["code"].is_string(), "{text}");
    }
}

#[test]
fn arbitrary_bodies_on_every_mutation_route_never_fail_the_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = rt.block_on(TestApp::new());
    let routes = rt.block_on(routes(&t));
    let mut runner = TestRunner::new(Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..routes.len(), input());
    runner
        .run(&strategy, |(route_idx, input)| {
            let (method, uri, valid) = &routes[route_idx];
            let body = match input {
                Input::Bytes(bytes) => bytes,
                Input::Json(v) => v.to_string().into_bytes(),
                Input::Edited(edits) => {
                    let Value::Object(mut body) = valid.clone() else {
                        unreachable!("valid bodies are objects")
                    };
                    for e in &edits {
                        body = apply(body, e);
                    }
                    Value::Object(body).to_string().into_bytes()
                }
            };
            rt.block_on(check(&t, method, uri, body));
            Ok(())
        })
        .unwrap();
    // Every route still answers a valid request sensibly afterwards.
    for (method, uri, valid) in &routes {
        rt.block_on(check(&t, method, uri, valid.to_string().into_bytes()));
    }
}
