//! Every endpoint and every error code through the router, without a socket.

use crate::support::{TestApp, order_body};
use axum::body::Body;
use axum::http::{Method, Request};
use oms::api::{ApiConfig, AppState, app, routes};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Two warehouses (east preferred for New York) with `sku-1` split 3 + 3 and `sku-2` east only.
async fn stocked() -> TestApp {
    let t = TestApp::new().await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.warehouse("west", 34.0, -118.0, 1).await;
    t.stock("sku-1", "east", 3).await;
    t.stock("sku-1", "west", 3).await;
    t.stock("sku-2", "east", 10).await;
    t
}

#[tokio::test]
async fn probes_and_readiness_gate() {
    let state = AppState::new(ApiConfig::default());
    let router = app(state.clone());
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let r = router.clone().oneshot(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = router.clone().oneshot(get("/readyz")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    for uri in ["/v1/orders", "/v1/warehouses", "/metrics"] {
        let r = router.clone().oneshot(get(uri)).await.unwrap();
        assert_eq!(r.status(), 503, "{uri}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }

    let t = TestApp::new().await;
    assert!(state.set_engine(t.engine.clone()));
    let r = router.clone().oneshot(get("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = router.clone().oneshot(get("/v1/warehouses")).await.unwrap();
    assert_eq!(r.status(), 200);
    t.engine.shutdown().await.unwrap();
    let r = router.oneshot(get("/readyz")).await.unwrap();
    assert_eq!(r.status(), 503, "a closed log is not ready");
}

#[tokio::test]
async fn warehouses_create_update_list() {
    let t = TestApp::new().await;
    let body = json!({"name": "East", "country": "US", "lat": 40.0, "lon": -75.0, "priority": 2, "carrier": "ups"});
    let w = t.put("/v1/warehouses/east", body.clone()).await.ok(201);
    assert_eq!(w["id"], "east");
    assert_eq!(w["carrier"], "ups");
    assert_eq!(w["priority"], 2);
    assert_eq!(w["created_at"], "2026-05-28T20:26:40.000Z");
    t.clock.advance_ms(1000);
    let w2 = t
        .put("/v1/warehouses/east", json!({"name": "East 2", "country": "US"}))
        .await
        .ok(200);
    assert_eq!(w2["name"], "East 2");
    assert_eq!(w2["created_at"], w["created_at"]);
    assert_ne!(w2["updated_at"], w["updated_at"]);
    for id in ["a", "b", "c"] {
        t.put(&format!("/v1/warehouses/{id}"), json!({"name": id, "country": "DE"}))
            .await
            .ok(201);
    }
    let p1 = t.get("/v1/warehouses?limit=2").await.ok(200);
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    assert_eq!(p1["next_cursor"], "b");
    let p2 = t.get("/v1/warehouses?limit=2&cursor=b").await.ok(200);
    let ids: Vec<&str> = p2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c", "east"]);
    assert_eq!(p2["next_cursor"], Value::Null);
    assert_eq!(t.get("/v1/warehouses/east").await.ok(200)["name"], "East 2");
    t.get("/v1/warehouses/nope").await.problem(404, "not_found");

    let bad = t
        .put("/v1/warehouses/bad%20id", body.clone())
        .await
        .problem(422, "validation_failed");
    assert_eq!(bad["errors"][0]["field"], "warehouse_id");
    let e = t
        .put("/v1/warehouses/x", json!({"name": "X", "country": "US", "lat": 1.0}))
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "lon");
    let e = t
        .put(
            "/v1/warehouses/x",
            json!({"name": "X", "country": "US", "colour": "red"}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "colour");
    t.get("/v1/warehouses?limit=501")
        .await
        .problem(422, "validation_failed");
    t.get("/v1/warehouses?page=2").await.problem(422, "validation_failed");
}

#[tokio::test]
async fn inventory_adjust_set_and_read() {
    let t = TestApp::new().await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.warehouse("west", 34.0, -118.0, 1).await;
    let p = t.stock("sku-1", "east", 5).await;
    assert_eq!(
        p,
        json!({"sku": "sku-1", "warehouse_id": "east", "on_hand": 5, "reserved": 0, "available": 5})
    );
    let p = t.put("/v1/inventory/sku-1/west", json!({"on_hand": 7})).await.ok(200);
    assert_eq!(p["on_hand"], 7);
    let s = t.get("/v1/inventory/sku-1").await.ok(200);
    assert_eq!(s["total_available"], 12);
    assert_eq!(s["warehouses"].as_array().unwrap().len(), 2);
    assert_eq!(t.pair("sku-1", "west").await["available"], 7);

    // Reserve 4 at east, then try to take on_hand below reserved.
    t.order("u1", &[("sku-1", 4)]).await.ok(201);
    let e = t
        .post(
            "/v1/inventory/adjustments",
            json!({"sku": "sku-1", "warehouse_id": "east", "delta": -2}),
        )
        .await
        .problem(409, "insufficient_stock");
    assert_eq!(e["lines"][0]["sku"], "sku-1");
    assert_eq!(e["lines"][0]["requested"], 2);
    assert_eq!(e["lines"][0]["available"], 1);
    t.put("/v1/inventory/sku-1/east", json!({"on_hand": 3}))
        .await
        .problem(409, "insufficient_stock");

    let e = t
        .post(
            "/v1/inventory/adjustments",
            json!({"sku": "sku-1", "warehouse_id": "nowhere", "delta": 1}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "warehouse_id");
    let e = t
        .post(
            "/v1/inventory/adjustments",
            json!({"sku": "bad sku", "warehouse_id": "east", "delta": 0}),
        )
        .await
        .problem(422, "validation_failed");
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["sku", "delta"]);
    t.put("/v1/inventory/sku-1/east", json!({"on_hand": -1}))
        .await
        .problem(422, "validation_failed");
    t.get("/v1/inventory/unknown-sku").await.problem(404, "not_found");
    t.get("/v1/inventory/sku-1/nowhere").await.problem(404, "not_found");
    t.get("/v1/inventory/bad%20sku").await.problem(422, "validation_failed");
}

#[tokio::test]
async fn placement_renders_the_order() {
    let t = stocked().await;
    let mut body = order_body("user-1", &[("sku-1", 4), ("sku-2", 1)]);
    body["items"][0]["unit_price"] = json!(0.1);
    body["items"][1]["discount"] = json!("1.5");
    body["tax_amount"] = json!("0.30");
    body["shipping_amount"] = json!(5);
    body["discount_amount"] = json!("0.05");
    body["billing_address"] =
        json!({"line1": "2 Side", "city": "Boston", "state": "MA", "zip": "02101", "country": "US"});
    body["reservation_ttl_seconds"] = json!(60);
    let o = t.post("/v1/orders", body).await.ok(201);
    assert_eq!(o["id"], "ORD-0000000001");
    assert_eq!(o["status"], "payment_pending");
    assert_eq!(o["currency"], "USD");
    // 4 x 0.1 stays exactly 0.40; 10.00 - 1.50 = 8.50.
    assert_eq!(o["items"][0]["line_total"], "0.40");
    assert_eq!(o["items"][0]["unit_price"], "0.10");
    assert_eq!(o["items"][1]["line_total"], "8.50");
    assert_eq!(o["subtotal_amount"], "8.90");
    assert_eq!(o["total_amount"], "14.15");
    assert_eq!(o["billing_address"]["region"], "MA");
    assert_eq!(o["billing_address"]["postal_code"], "02101");
    assert_eq!(o["reservation_expires_at"], "2026-05-28T20:27:40.000Z");
    let allocs = &o["items"][0]["allocations"];
    assert_eq!(
        allocs,
        &json!([{"warehouse_id": "east", "quantity": 3}, {"warehouse_id": "west", "quantity": 1}])
    );
    for key in [
        "payment",
        "shipments",
        "returns",
        "refunds",
        "created_at",
        "updated_at",
        "shipping_address",
    ] {
        assert!(o.get(key).is_some(), "missing {key}");
    }
    assert_eq!(o["payment"]["captured_amount"], "0.00");
    assert_eq!(t.get("/v1/orders/ORD-0000000001").await.ok(200), o);
    assert_eq!(t.pair("sku-1", "east").await["reserved"], 3);

    // Default reservation: 15 minutes.
    let o = t.order("user-1", &[("sku-2", 1)]).await.ok(201);
    assert_eq!(o["reservation_expires_at"], "2026-05-28T20:41:40.000Z");
    // JPY has no minor unit.
    let mut jpy = order_body("user-1", &[("sku-2", 1)]);
    jpy["currency"] = json!("JPY");
    jpy["items"][0]["unit_price"] = json!(1500);
    let o = t.post("/v1/orders", jpy.clone()).await.ok(201);
    assert_eq!(o["total_amount"], "1500");
    jpy["items"][0]["unit_price"] = json!("1500.5");
    let e = t.post("/v1/orders", jpy).await.problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "items[0].unit_price");
}

#[tokio::test]
async fn bad_input_is_a_problem_never_a_crash() {
    let t = stocked().await;
    let field_of = |e: &Value| e["errors"][0]["field"].as_str().unwrap().to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("unknown top-level field", json!({"colour": "red"}), "colour"),
        (
            "unknown item field",
            json!({"items": [{"sku": "sku-1", "quantity": 1, "unit_price": "1", "size": "L"}]}),
            "items[0].size",
        ),
        (
            "unknown address field",
            json!({"shipping_address": {"line1": "a", "city": "b", "country": "US", "planet": "Mars"}}),
            "shipping_address.planet",
        ),
        (
            "negative quantity",
            json!({"items": [{"sku": "sku-1", "quantity": -1, "unit_price": "1"}]}),
            "items[0].quantity",
        ),
        (
            "zero quantity",
            json!({"items": [{"sku": "sku-1", "quantity": 0, "unit_price": "1"}]}),
            "items[0].quantity",
        ),
        (
            "huge quantity",
            json!({"items": [{"sku": "sku-1", "quantity": 1_000_001, "unit_price": "1"}]}),
            "items[0].quantity",
        ),
        (
            "quantity as string",
            json!({"items": [{"sku": "sku-1", "quantity": "1", "unit_price": "1"}]}),
            "items[0].quantity",
        ),
        (
            "price as bool",
            json!({"items": [{"sku": "sku-1", "quantity": 1, "unit_price": true}]}),
            "items[0].unit_price",
        ),
        (
            "price text",
            json!({"items": [{"sku": "sku-1", "quantity": 1, "unit_price": "ten"}]}),
            "items[0].unit_price",
        ),
        (
            "negative price",
            json!({"items": [{"sku": "sku-1", "quantity": 1, "unit_price": "-1"}]}),
            "items[0].unit_price",
        ),
        (
            "three decimals",
            json!({"items": [{"sku": "sku-1", "quantity": 1, "unit_price": "1.001"}]}),
            "items[0].unit_price",
        ),
        (
            "bad sku",
            json!({"items": [{"sku": "sku 1", "quantity": 1, "unit_price": "1"}]}),
            "items[0].sku",
        ),
        ("no items", json!({"items": []}), "items"),
        ("lower-case currency", json!({"currency": "usd"}), "currency"),
        ("bad user", json!({"user_id": ""}), "user_id"),
        (
            "ttl zero",
            json!({"reservation_ttl_seconds": 0}),
            "reservation_ttl_seconds",
        ),
        (
            "missing city",
            json!({"shipping_address": {"line1": "a", "country": "US"}}),
            "shipping_address.city",
        ),
    ];
    for (what, patch, field) in cases {
        let mut body = order_body("u1", &[("sku-1", 1)]);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let e = t.post("/v1/orders", body).await.problem(422, "validation_failed");
        assert_eq!(field_of(&e), field, "{what}: {e}");
    }
    // Missing field.
    let mut body = order_body("u1", &[("sku-1", 1)]);
    body.as_object_mut().unwrap().remove("currency");
    let e = t.post("/v1/orders", body).await.problem(422, "validation_failed");
    assert_eq!(field_of(&e), "currency");
    // Numbers too large for any type, and literals too long for money.
    let huge = r#"{"user_id":"u1","currency":"USD","items":[{"sku":"sku-1","quantity":1e400,"unit_price":"1"}],"shipping_address":{"line1":"a","city":"b","country":"US"}}"#;
    t.raw(Method::POST, "/v1/orders", huge, &[])
        .await
        .problem(422, "validation_failed");
    let big_price = format!(
        r#"{{"user_id":"u1","currency":"USD","items":[{{"sku":"sku-1","quantity":1,"unit_price":{}}}],"shipping_address":{{"line1":"a","city":"b","country":"US"}}}}"#,
        "9".repeat(60)
    );
    let e = t
        .raw(Method::POST, "/v1/orders", &big_price, &[])
        .await
        .problem(422, "validation_failed");
    assert_eq!(field_of(&e), "items[0].unit_price");
    // Too many lines.
    let lines: Vec<(&str, u64)> = (0..501).map(|_| ("sku-1", 1)).collect();
    t.order("u1", &lines).await.problem(422, "validation_failed");
    // Malformed JSON, a body that is not an object, trailing garbage, no content type.
    t.raw(Method::POST, "/v1/orders", "{\"user_id\": ", &[])
        .await
        .problem(400, "malformed_json");
    let trailing = format!("{} x", order_body("u1", &[("sku-1", 1)]));
    t.raw(Method::POST, "/v1/orders", &trailing, &[])
        .await
        .problem(400, "malformed_json");
    t.raw(Method::POST, "/v1/orders", "[1, 2]", &[])
        .await
        .problem(422, "validation_failed");
    let no_ct = Request::post("/v1/orders").body(Body::from("{}")).unwrap();
    t.send(no_ct).await.problem(400, "bad_request");
    let text = Request::post("/v1/orders")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    t.send(text).await.problem(400, "bad_request");
    // Over 1 MiB, declared and streamed.
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1024 * 1024));
    let e = t
        .raw(Method::POST, "/v1/orders", &big, &[])
        .await
        .problem(413, "payload_too_large");
    assert_eq!(e["limit_bytes"], 1024 * 1024);
    let stream = futures::stream::iter((0..17).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let chunked = Request::post("/v1/orders")
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    t.send(chunked).await.problem(413, "payload_too_large");
    // Nothing was placed by any of it.
    assert_eq!(t.get("/v1/orders").await.ok(200)["data"], json!([]));
    assert_eq!(t.pair("sku-1", "east").await["reserved"], 0);
}

#[tokio::test]
async fn insufficient_stock_reserves_nothing() {
    let t = stocked().await;
    let e = t
        .order("u1", &[("sku-2", 2), ("sku-1", 7)])
        .await
        .problem(409, "insufficient_stock");
    assert_eq!(e["lines"], json!([{"sku": "sku-1", "requested": 7, "available": 6}]));
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 0);
    assert_eq!(t.pair("sku-1", "east").await["reserved"], 0);
    // A SKU no warehouse ever stocked is a typo, not "sold out" (issue 11).
    let e = t
        .order("u1", &[("sku-1", 1), ("sku-404", 1)])
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "items[1].sku", "{e}");
    assert!(
        e["errors"][0]["message"].as_str().unwrap().contains("unknown SKU"),
        "{e}"
    );
    assert_eq!(t.pair("sku-1", "east").await["reserved"], 0);
    // A known SKU at zero is still sold out.
    t.post(
        "/v1/inventory/adjustments",
        json!({"sku": "sku-0", "warehouse_id": "east", "delta": 1}),
    )
    .await
    .ok(200);
    t.post(
        "/v1/inventory/adjustments",
        json!({"sku": "sku-0", "warehouse_id": "east", "delta": -1}),
    )
    .await
    .ok(200);
    let e = t.order("u1", &[("sku-0", 1)]).await.problem(409, "insufficient_stock");
    assert_eq!(e["lines"][0]["available"], 0);
}

#[tokio::test]
async fn full_lifecycle_with_split_shipment_return_and_partial_refund() {
    let t = stocked().await;
    let o = t.order("u1", &[("sku-1", 5)]).await.ok(201);
    let id = o["id"].as_str().unwrap().to_string();
    let base = format!("/v1/orders/{id}");

    let o = t
        .post(&format!("{base}/payments"), json!({"token": "tok_visa_4242"}))
        .await
        .ok(200);
    assert_eq!(o["status"], "confirmed");
    assert_eq!(o["payment"]["captured_amount"], "50.00");
    assert_eq!(o["payment"]["attempts"][0]["token_last4"], "4242");
    assert_eq!(o["payment"]["attempts"][0]["status"], "captured");

    let empty = Request::post(format!("{base}/fulfillments"))
        .body(Body::empty())
        .unwrap();
    let o = t.send(empty).await.ok(200);
    assert_eq!(o["status"], "processing");
    let shipments = o["shipments"].as_array().unwrap().clone();
    assert_eq!(shipments.len(), 2, "one shipment per warehouse");
    let by_wh = |wh: &str| shipments.iter().find(|s| s["warehouse_id"] == wh).unwrap().clone();
    let east = by_wh("east");
    let west = by_wh("west");
    assert_eq!(east["items"], json!([{"sku": "sku-1", "quantity": 3}]));
    assert_eq!(west["items"], json!([{"sku": "sku-1", "quantity": 2}]));
    assert_eq!(east["status"], "pending");
    assert!(east["id"].as_str().unwrap().starts_with("SHP-"));

    let o = t
        .post(
            &format!("{base}/shipments/{}/ship", east["id"].as_str().unwrap()),
            json!({"carrier": "ups", "tracking_number": "1Z999"}),
        )
        .await
        .ok(200);
    assert_eq!(o["status"], "partially_shipped");
    assert_eq!(
        t.pair("sku-1", "east").await,
        json!({"sku": "sku-1", "warehouse_id": "east", "on_hand": 0, "reserved": 0, "available": 0})
    );
    let o = t
        .post(
            &format!("{base}/shipments/{}/ship", west["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(o["status"], "shipped");
    let shipped_east = o["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["warehouse_id"] == "east")
        .unwrap()
        .clone();
    assert_eq!(shipped_east["carrier"], "ups");
    assert_eq!(shipped_east["tracking_number"], "1Z999");
    assert!(shipped_east["shipped_at"].is_string());
    for s in [&east, &west] {
        t.post(
            &format!("{base}/shipments/{}/deliver", s["id"].as_str().unwrap()),
            json!({}),
        )
        .await
        .ok(200);
    }
    let o = t.get(&base).await.ok(200);
    assert_eq!(o["status"], "delivered");
    t.post(&format!("{base}/shipments/SHP-9-1/deliver"), json!({}))
        .await
        .problem(404, "not_found");

    // Return two units, approve, receive with restock at east.
    let r = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 2}], "reason": "too big"}),
        )
        .await
        .ok(201);
    assert_eq!(r["order_id"], id.as_str());
    assert_eq!(r["status"], "requested");
    assert_eq!(r["items"], json!([{"sku": "sku-1", "quantity": 2}]));
    assert_eq!(r["order"]["status"], "return_requested");
    assert_eq!(r["order"]["returns"][0]["id"], r["id"]);
    let ret_id = r["id"].as_str().unwrap().to_string();
    assert!(ret_id.starts_with("RET-"));
    assert_eq!(t.get(&base).await.ok(200)["status"], "return_requested");
    let e = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 9}], "reason": "all"}),
        )
        .await;
    // One return at a time awaits a decision.
    let e = e.problem(409, "invalid_transition");
    assert_eq!(e["from"], "return_requested");
    assert_eq!(e["detail"], "another return is awaiting a decision");
    let o = t
        .post(&format!("{base}/returns/{ret_id}/approve"), json!({}))
        .await
        .ok(200);
    assert_eq!(o["status"], "return_approved");
    // Delivered 5, 2 being returned: at most 3 more.
    let e = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 4}], "reason": "more"}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "items[0].quantity", "{e}");
    let o = t
        .post(
            &format!("{base}/returns/{ret_id}/receive"),
            json!({"warehouse_id": "east", "restock": true}),
        )
        .await
        .ok(200);
    assert_eq!(o["returns"][0]["status"], "received");
    assert_eq!(o["returns"][0]["warehouse_id"], "east");
    assert_eq!(o["returns"][0]["restock"], true);
    assert_eq!(t.pair("sku-1", "east").await["on_hand"], 2);

    // Partial refund for the return, then more than what is left.
    let f = t
        .post(
            &format!("{base}/refunds"),
            json!({"amount": 20, "return_id": ret_id, "reason": "returned"}),
        )
        .await
        .ok(201);
    assert_eq!(f["order_id"], id.as_str());
    assert_eq!(f["amount"], "20.00");
    assert_eq!(f["return_id"], ret_id.as_str());
    assert_eq!(f["status"], "succeeded");
    assert!(f["id"].as_str().unwrap().starts_with("REF-"));
    assert_eq!(f["order"]["status"], "partially_refunded");
    assert_eq!(f["order"]["refunds"][0]["id"], f["id"]);
    let o = t.get(&base).await.ok(200);
    assert_eq!(o["status"], "partially_refunded");
    assert_eq!(o["payment"]["refunded_amount"], "20.00");
    t.post(&format!("{base}/refunds"), json!({"amount": "30.01"}))
        .await
        .problem(422, "validation_failed");
    t.post(&format!("{base}/refunds"), json!({"amount": "0"}))
        .await
        .problem(422, "validation_failed");
    t.post(&format!("{base}/refunds"), json!({"amount": "30.00"}))
        .await
        .ok(201);
    assert_eq!(t.get(&base).await.ok(200)["status"], "refunded");

    let h = t.get(&format!("{base}/history")).await.ok(200);
    assert_eq!(h["order_id"], id.as_str());
    let steps: Vec<(Value, Value)> = h["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tr| (tr["from"].clone(), tr["to"].clone()))
        .collect();
    let expect = [
        (Value::Null, "pending"),
        (json!("pending"), "payment_pending"),
        (json!("payment_pending"), "confirmed"),
        (json!("confirmed"), "processing"),
        (json!("processing"), "partially_shipped"),
        (json!("partially_shipped"), "shipped"),
        (json!("shipped"), "delivered"),
        (json!("delivered"), "return_requested"),
        (json!("return_requested"), "return_approved"),
    ];
    for (i, (from, to)) in expect.iter().enumerate() {
        assert_eq!(&steps[i].0, from, "step {i}");
        assert_eq!(steps[i].1, *to, "step {i}");
    }
    assert_eq!(steps.last().unwrap().1, "refunded");
    let first = &h["transitions"][0];
    for key in ["reason", "metadata", "actor", "at"] {
        assert!(first.get(key).is_some(), "transition lacks {key}");
    }
}

#[tokio::test]
async fn invalid_transitions_and_rejected_returns() {
    let t = stocked().await;
    let o = t.order("u1", &[("sku-2", 1)]).await.ok(201);
    let base = format!("/v1/orders/{}", o["id"].as_str().unwrap());
    let e = t
        .post(&format!("{base}/fulfillments"), json!({}))
        .await
        .problem(409, "invalid_transition");
    assert_eq!(e["from"], "payment_pending");
    assert!(e["action"].is_string());
    t.post(&format!("{base}/fulfillments"), json!({"x": 1}))
        .await
        .problem(422, "validation_failed");
    let o = t
        .post(&format!("{base}/cancel"), json!({"reason": "changed my mind"}))
        .await
        .ok(200);
    assert_eq!(o["status"], "cancelled");
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 0);
    let e = t
        .post(&format!("{base}/payments"), json!({"token": "tok_visa"}))
        .await
        .problem(409, "invalid_transition");
    assert_eq!(e["from"], "cancelled");
    t.post("/v1/orders/ORD-0000000999/cancel", json!({}))
        .await
        .problem(404, "not_found");
    t.post("/v1/orders/not-an-order/cancel", json!({}))
        .await
        .problem(404, "not_found");
    t.get("/v1/orders/ORD-12x").await.problem(404, "not_found");

    // Reject a return.
    let o = t.order("u1", &[("sku-2", 1)]).await.ok(201);
    let base = format!("/v1/orders/{}", o["id"].as_str().unwrap());
    t.post(&format!("{base}/payments"), json!({"token": "tok_ok"}))
        .await
        .ok(200);
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    let shp = o["shipments"][0]["id"].as_str().unwrap().to_string();
    t.post(&format!("{base}/shipments/{shp}/ship"), json!({})).await.ok(200);
    t.post(&format!("{base}/shipments/{shp}/deliver"), json!({}))
        .await
        .ok(200);
    let r = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-2", "quantity": 1}], "reason": "meh"}),
        )
        .await
        .ok(201);
    let o = t
        .post(
            &format!("{base}/returns/{}/reject", r["id"].as_str().unwrap()),
            json!({"reason": "worn"}),
        )
        .await
        .ok(200);
    assert_eq!(o["status"], "return_rejected");
    assert_eq!(o["returns"][0]["status"], "rejected");
    assert_eq!(o["returns"][0]["rejection_reason"], "worn");
    t.post(&format!("{base}/returns/RET-1-7/approve"), json!({}))
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn declined_payment_is_402_and_releases_stock() {
    let t = stocked().await;
    let o = t.order("u1", &[("sku-2", 3)]).await.ok(201);
    let id = o["id"].as_str().unwrap();
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 3);
    let e = t
        .post(
            &format!("/v1/orders/{id}/payments"),
            json!({"token": "tok_chargeDeclined_insufficient"}),
        )
        .await
        .problem(402, "payment_declined");
    assert_eq!(e["order_id"], id);
    assert_eq!(e["order_status"], "cancelled");
    assert_eq!(t.get(&format!("/v1/orders/{id}")).await.ok(200)["status"], "cancelled");
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 0);
    t.post(&format!("/v1/orders/{id}/payments"), json!({"token": ""}))
        .await
        .problem(422, "validation_failed");
}

#[tokio::test]
async fn idempotent_requests_replay_byte_for_byte() {
    let t = stocked().await;
    let body = order_body("u1", &[("sku-2", 1)]).to_string();
    let key = [("idempotency-key", "order-abc-1")];
    let first = t.raw(Method::POST, "/v1/orders", &body, &key).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    t.clock.advance_ms(5000);
    let again = t.raw(Method::POST, "/v1/orders", &body, &key).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.bytes, first.bytes, "replay must be byte-identical");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 1, "placed once");

    let other = order_body("u1", &[("sku-2", 2)]).to_string();
    t.raw(Method::POST, "/v1/orders", &other, &key)
        .await
        .problem(422, "idempotency_conflict");
    // The same key on another path is another request.
    let adjust = json!({"sku": "sku-2", "warehouse_id": "east", "delta": 1}).to_string();
    t.raw(Method::POST, "/v1/inventory/adjustments", &adjust, &key)
        .await
        .problem(422, "idempotency_conflict");
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "a\tb"] {
        let r = t
            .raw(Method::POST, "/v1/orders", &body, &[("idempotency-key", bad)])
            .await;
        r.problem(422, "validation_failed");
    }

    // A business rejection is not stored: after stock arrives the same key succeeds.
    let big = order_body("u1", &[("sku-2", 50)]).to_string();
    let k2 = [("idempotency-key", "order-big")];
    t.raw(Method::POST, "/v1/orders", &big, &k2)
        .await
        .problem(409, "insufficient_stock");
    t.stock("sku-2", "east", 100).await;
    let placed = t.raw(Method::POST, "/v1/orders", &big, &k2).await;
    assert_eq!(placed.status, 201);

    // Lifecycle requests and warehouse PUTs replay too.
    let id = first.json()["id"].as_str().unwrap().to_string();
    let cancel = json!({"reason": "duplicate"}).to_string();
    let k3 = [("idempotency-key", "cancel-1")];
    let c1 = t
        .twice(
            Method::POST,
            &format!("/v1/orders/{id}/cancel"),
            &cancel,
            "cancel-1",
            200,
        )
        .await;
    // Payments replay too, approved and declined alike (the outcome is stored with its record).
    let paid_id = t.order("u2", &[("sku-2", 1)]).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pay = json!({"token": "tok_visa"}).to_string();
    t.twice(
        Method::POST,
        &format!("/v1/orders/{paid_id}/payments"),
        &pay,
        "pay-1",
        200,
    )
    .await;
    let declined_id = t.order("u3", &[("sku-2", 1)]).await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decline = json!({"token": "tok_chargeDeclined"}).to_string();
    t.twice(
        Method::POST,
        &format!("/v1/orders/{declined_id}/payments"),
        &decline,
        "pay-2",
        402,
    )
    .await;
    assert_eq!(t.gateway.captures(), 1, "replays do not reach the gateway");
    let wh = json!({"name": "North", "country": "CA"}).to_string();
    t.twice(Method::PUT, "/v1/warehouses/north", &wh, "wh-north", 201).await;

    // Across a restart.
    let t = t.restart().await;
    let after = t.raw(Method::POST, "/v1/orders", &body, &key).await;
    assert_eq!(after.status, 201);
    assert_eq!(after.bytes, first.bytes);
    let c3 = t
        .raw(Method::POST, &format!("/v1/orders/{id}/cancel"), &cancel, &k3)
        .await;
    assert_eq!(c3.bytes, c1.bytes);
}

#[tokio::test]
async fn order_lists_paginate_and_filter() {
    let t = stocked().await;
    t.stock("sku-2", "east", 100).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let user = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(
            t.order(user, &[("sku-2", 1)]).await.ok(201)["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    t.post(&format!("/v1/orders/{}/cancel", ids[0]), json!({}))
        .await
        .ok(200);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/v1/orders?limit=3&cursor={c}"),
            None => "/v1/orders?limit=3".to_string(),
        };
        let page = t.get(&uri).await.ok(200);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        seen.extend(data.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(Some(c), data.last().unwrap()["id"].as_str());
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let odd = t.get("/v1/orders?user_id=odd").await.ok(200);
    assert_eq!(odd["data"].as_array().unwrap().len(), 3);
    assert_eq!(odd["next_cursor"], Value::Null);
    let cancelled = t.get("/v1/orders?status=cancelled").await.ok(200);
    assert_eq!(cancelled["data"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["data"][0]["id"], ids[0].as_str());
    let both = t.get("/v1/orders?status=payment_pending&user_id=even").await.ok(200);
    assert_eq!(both["data"].as_array().unwrap().len(), 3);

    let e = t.get("/v1/orders?status=lost").await.problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "status");
    t.get("/v1/orders?limit=501").await.problem(422, "validation_failed");
    t.get("/v1/orders?limit=0").await.problem(422, "validation_failed");
    t.get("/v1/orders?limit=ten").await.problem(422, "validation_failed");
    t.get("/v1/orders?cursor=42").await.problem(422, "validation_failed");
    t.get("/v1/orders?user_id=a%20b")
        .await
        .problem(422, "validation_failed");
    assert_eq!(
        t.get("/v1/orders?limit=500").await.ok(200)["data"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
}

#[tokio::test]
async fn api_keys_protect_everything_but_probes() {
    let t = TestApp::with_keys(vec!["alpha-key".into(), "beta-key".into()]).await;
    let req = |uri: &str, auth: Option<&str>| {
        let mut b = Request::get(uri);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(t.send(req("/healthz", None)).await.status, 200);
    assert_eq!(t.send(req("/readyz", None)).await.status, 200);
    for uri in ["/v1/orders", "/metrics", "/v1/openapi.json", "/v1/events", "/nope"] {
        t.send(req(uri, None)).await.problem(401, "unauthorized");
        t.send(req(uri, Some("Bearer wrong")))
            .await
            .problem(401, "unauthorized");
        t.send(req(uri, Some("alpha-key"))).await.problem(401, "unauthorized");
    }
    assert_eq!(t.send(req("/v1/orders", Some("Bearer alpha-key"))).await.status, 200);
    assert_eq!(t.send(req("/v1/orders", Some("Bearer beta-key"))).await.status, 200);
    assert_eq!(t.send(req("/v1/orders", Some("bearer beta-key"))).await.status, 200);
    let body = Request::post("/v1/orders")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    t.send(body).await.problem(401, "unauthorized");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let t = TestApp::new().await;
    let e = t.get("/v1/nothing-here").await.problem(404, "not_found");
    assert_eq!(e["detail"], "no such route");
    let del = Request::delete("/v1/orders").body(Body::empty()).unwrap();
    let r = t.send(del).await;
    assert_eq!(r.header("allow"), Some("GET, POST"));
    r.problem(405, "method_not_allowed");
    let put = Request::put("/v1/orders/ORD-0000000001/cancel")
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(put).await.header("allow"), Some("POST"));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let t = TestApp::new().await;
    let given = Request::get("/healthz")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(given).await.header("x-request-id"), Some("abc-123"));
    let r = t.get("/healthz").await;
    let generated = r.header("x-request-id").unwrap().to_string();
    assert!(generated.starts_with("req-"), "{generated}");
    let bad = Request::get("/healthz")
        .header("x-request-id", "has space")
        .body(Body::empty())
        .unwrap();
    assert_ne!(t.send(bad).await.header("x-request-id"), Some("has space"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let t = stocked().await;
    t.order("u1", &[("sku-2", 1)]).await.ok(201);
    t.get("/v1/orders/ORD-0000000001").await.ok(200);
    t.get("/v1/orders/ORD-0000000002").await.problem(404, "not_found");
    let r = t.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = String::from_utf8(r.bytes).unwrap();
    for needle in [
        "oms_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"201\"} 1",
        "oms_http_requests_total{method=\"GET\",route=\"/v1/orders/{id}\",status=\"200\"} 1",
        "oms_http_requests_total{method=\"GET\",route=\"/v1/orders/{id}\",status=\"404\"} 1",
        "oms_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/orders\",status=\"201\",le=\"+Inf\"} 1",
        "oms_wal_records_total ",
        "oms_wal_fsyncs_total ",
        "oms_wal_batch_records_mean ",
        "oms_actors_active{kind=\"pair\"}",
        "oms_actors_active{kind=\"order\"}",
        "oms_orders 1",
        "oms_mailbox_full_total 0",
        "oms_recovery_duration_seconds ",
        "oms_recovered_records ",
        "oms_snapshots_total ",
        "oms_placement_retries_total ",
        "oms_ready 1",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
}

#[tokio::test]
async fn openapi_documents_exactly_the_served_routes() {
    let t = TestApp::new().await;
    let doc = t.get("/v1/openapi.json").await.ok(200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["operationId"].is_string());
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = routes::served()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);

    // Every documented operation is answered by its route, not by the 404/405 fallbacks; and
    // the contract's routes are all there.
    for (method, path) in &documented {
        let uri = path
            .replace("{id}", "ORD-0000000001")
            .replace("{warehouse_id}", "w1")
            .replace("{sku}", "s1")
            .replace("{shipment_id}", "SHP-0000000001-1")
            .replace("{return_id}", "RET-0000000001-1");
        if path.ends_with("/events") && !path.contains("{id}") {
            continue; // a live stream: covered by the events tests
        }
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = t.raw(m, &uri, "{}", &[]).await;
        assert_ne!(r.status, 405, "{method} {path}");
        if r.status == 404 {
            assert_ne!(r.json()["detail"], "no such route", "{method} {path}");
        }
    }
    for (m, p) in [
        ("put", "/v1/warehouses/{warehouse_id}"),
        ("get", "/v1/warehouses"),
        ("post", "/v1/inventory/adjustments"),
        ("put", "/v1/inventory/{sku}/{warehouse_id}"),
        ("get", "/v1/inventory/{sku}"),
        ("post", "/v1/orders"),
        ("get", "/v1/orders"),
        ("get", "/v1/orders/{id}"),
        ("get", "/v1/orders/{id}/history"),
        ("post", "/v1/orders/{id}/payments"),
        ("post", "/v1/orders/{id}/cancel"),
        ("post", "/v1/orders/{id}/fulfillments"),
        ("post", "/v1/orders/{id}/shipments/{shipment_id}/ship"),
        ("post", "/v1/orders/{id}/shipments/{shipment_id}/deliver"),
        ("post", "/v1/orders/{id}/returns"),
        ("post", "/v1/orders/{id}/returns/{return_id}/approve"),
        ("post", "/v1/orders/{id}/returns/{return_id}/reject"),
        ("post", "/v1/orders/{id}/returns/{return_id}/receive"),
        ("post", "/v1/orders/{id}/refunds"),
        ("get", "/v1/orders/{id}/events"),
        ("get", "/v1/events"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ] {
        assert!(
            documented.contains(&(m.to_string(), p.to_string())),
            "{m} {p} missing from the document"
        );
    }
}

/// A failed fsync (disk full) fails the write with 503 and acknowledges nothing; from then on
/// the log is poisoned: every mutation answers 503, `/readyz` says not ready, reads still work.
#[tokio::test]
async fn a_failed_fsync_answers_503_and_poisons_the_log() {
    static DISK: std::sync::OnceLock<std::sync::Arc<wal::SimStorage>> = std::sync::OnceLock::new();
    let t = TestApp::with_config(Vec::new(), |c| {
        c.storage = Some(DISK.get_or_init(|| std::sync::Arc::new(wal::SimStorage::new())).clone());
        c.wal.sync = wal::SyncPolicy::Always;
    })
    .await;
    t.warehouse("east", 40.7, -74.0, 1).await;
    t.stock("sku-1", "east", 5).await;
    DISK.get().unwrap().fail_nth(wal::SimOp::Sync, 1, wal::SimFault::Enospc);
    t.order("u1", &[("sku-1", 1)]).await.problem(503, "unavailable");
    assert_eq!(
        t.pair("sku-1", "east").await["reserved"],
        0,
        "nothing was acknowledged or kept"
    );
    t.post(
        "/v1/inventory/adjustments",
        json!({"sku": "sku-1", "warehouse_id": "east", "delta": 1, "reason": "receiving"}),
    )
    .await
    .problem(503, "unavailable");
    assert_eq!(t.get("/readyz").await.status, 503);
    assert_eq!(t.get("/v1/orders").await.status, 200);
}

/// A client that gives up on an idempotent request (its connection drops mid-flight) and
/// retries with the same key gets the one order, never two: the key stays held until the
/// first request is carried out, and the retry replays its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_request_replays_instead_of_placing_twice() {
    let t = stocked().await;
    let body = order_body("u1", &[("sku-2", 1)]).to_string();
    let key = [("idempotency-key", "dropped-1")];
    let dropped = tokio::time::timeout(
        std::time::Duration::ZERO,
        t.raw(Method::POST, "/v1/orders", &body, &key),
    )
    .await;
    let retry = t.raw(Method::POST, "/v1/orders", &body, &key).await;
    assert_eq!(retry.status, 201);
    if dropped.is_err() {
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 1, "one order, not two");
    let listed = t.get("/v1/orders?user_id=u1").await.ok(200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

/// A problem names the field the client sent, and every invalid field at once.
#[tokio::test]
async fn errors_name_the_fields_sent_all_at_once() {
    let t = stocked().await;
    let big = json!({"sku": "sku-1", "warehouse_id": "east", "delta": 1_000_000_000_000_i64});
    let e = t
        .post("/v1/inventory/adjustments", big)
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "delta", "{e}");
    let mut body = order_body("bad user", &[("sku-1", 0)]);
    body["currency"] = json!("usd");
    body["items"][0]["sku"] = json!("bad sku");
    let e = t.post("/v1/orders", body).await.problem(422, "validation_failed");
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["field"].as_str().unwrap())
        .collect();
    for f in ["user_id", "currency", "items[0].sku", "items[0].quantity"] {
        assert!(fields.contains(&f), "{f} missing: {e}");
    }
    assert!(!fields.contains(&"reservation_ttl_seconds"), "a field not sent: {e}");
}

/// The business counters follow the durable feed; process and build series are there.
#[tokio::test]
async fn metrics_count_business_outcomes_and_the_process() {
    let t = stocked().await;
    t.order("u1", &[("sku-2", 1)]).await.ok(201);
    t.order("u1", &[("sku-2", 1_000_000)])
        .await
        .problem(409, "insufficient_stock");
    let pay = json!({"token": "tok_visa_4242"});
    t.post("/v1/orders/ORD-0000000001/payments", pay).await.ok(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = String::from_utf8(t.get("/metrics").await.bytes).unwrap();
        if text.contains("oms_payments_total{outcome=\"captured\"} 1") {
            for needle in [
                "oms_orders_placed_total 1",
                "oms_placements_rejected_total{reason=\"insufficient_stock\"} 1",
                "oms_build_info{version=\"",
                "process_cpu_seconds_total ",
                "process_resident_memory_bytes ",
                "process_open_fds ",
                "process_start_time_seconds ",
            ] {
                assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no captured payment counted:\n{text}"
        );
        tokio::task::yield_now().await;
    }
}
