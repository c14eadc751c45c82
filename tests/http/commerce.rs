//! Commerce fields and search: an order's email, note, tags and metadata (placed, edited with
//! `PATCH`, in the history with their actor, kept across a restart), and `GET /v1/orders`
//! filtered by time, SKU, tag and email, combined, newest first, paginated.

use crate::support::{T0, TestApp, order_body};
use axum::http::Method;
use serde_json::{Value, json};

async fn stocked() -> TestApp {
    let t = TestApp::new().await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.stock("sku-1", "east", 100).await;
    t.stock("sku-2", "east", 100).await;
    t
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn patch(t: &TestApp, id: &str, body: Value) -> crate::support::Resp {
    t.raw(Method::PATCH, &format!("/v1/orders/{id}"), &body.to_string(), &[])
        .await
}

#[tokio::test]
async fn orders_carry_email_note_tags_and_metadata_and_edits_are_history() {
    let t = stocked().await;
    let body = with(
        order_body("u-1", &[("sku-1", 1)]),
        json!({"email": "Ada@Example.com", "note": "gift", "tags": ["vip"], "metadata": {"erp.id": "42"}}),
    );
    let o = t.post("/v1/orders", body).await.ok(201);
    assert_eq!(
        (&o["email"], &o["note"], &o["tags"], &o["metadata"]),
        (
            &json!("Ada@Example.com"),
            &json!("gift"),
            &json!(["vip"]),
            &json!({"erp.id": "42"})
        )
    );
    let id = o["id"].as_str().unwrap().to_string();
    let edit = json!({"note": null, "tags": ["vip", "rush"], "metadata": {"erp.id": null, "crm": "7"},
        "shipping_address": {"line1": "2 Side St", "city": "Boston", "country": "US"}});
    let edited = patch(&t, &id, edit).await.ok(200);
    assert_eq!(edited["note"], Value::Null);
    assert_eq!(edited["tags"], json!(["vip", "rush"]));
    assert_eq!(edited["metadata"], json!({"crm": "7"}));
    assert_eq!(edited["shipping_address"]["city"], "Boston");
    assert_eq!(edited["status"], "payment_pending");
    let h = t.get(&format!("/v1/orders/{id}/history")).await.ok(200);
    let last = h["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["from"], "payment_pending");
    assert_eq!(last["to"], "payment_pending");
    assert_eq!(last["reason"], "order edited");
    assert_eq!(last["actor"], "api");
    assert_eq!(last["metadata"]["fields"], "note,tags,metadata,shipping_address");
    // The same edit again changes nothing and adds nothing to the history.
    let again = patch(&t, &id, json!({"tags": ["vip", "rush"]})).await.ok(200);
    assert_eq!(again["tags"], json!(["vip", "rush"]));
    let h2 = t.get(&format!("/v1/orders/{id}/history")).await.ok(200);
    assert_eq!(
        h2["transitions"].as_array().unwrap().len(),
        h["transitions"].as_array().unwrap().len()
    );
    // Everything survives a restart (the log's format version 2 and the snapshot-free replay).
    let t = t.restart().await;
    let after = t.get(&format!("/v1/orders/{id}")).await.ok(200);
    assert_eq!(
        (&after["email"], &after["tags"], &after["metadata"]),
        (&json!("Ada@Example.com"), &json!(["vip", "rush"]), &json!({"crm": "7"}))
    );
    assert_eq!(after["shipping_address"]["city"], "Boston");
    let unchanged = t.post("/v1/orders", order_body("u-2", &[("sku-1", 1)])).await.ok(201);
    assert_eq!(
        (
            &unchanged["email"],
            &unchanged["note"],
            &unchanged["tags"],
            &unchanged["metadata"]
        ),
        (&Value::Null, &Value::Null, &json!([]), &json!({}))
    );
}

#[tokio::test]
async fn edits_are_validated_refused_after_shipping_and_name_their_key() {
    let t = TestApp::with_keys(vec!["alpha-key".into()]).await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.stock("sku-1", "east", 10).await;
    let bad = with(
        order_body("u-1", &[("sku-1", 1)]),
        json!({"email": "not-an-email", "tags": ["a", "a"], "metadata": {"bad key": "v"}}),
    );
    let e = t.post("/v1/orders", bad).await.problem(422, "validation_failed");
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "tags[1]", "metadata.bad key"]);
    let o = t.order("u-1", &[("sku-1", 1)]).await.ok(201);
    let id = o["id"].as_str().unwrap().to_string();
    let e = patch(&t, &id, json!({"tags": vec!["x"; 21], "note": "n".repeat(2001)}))
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"].as_array().unwrap().len(), 2, "{e}");
    patch(&t, &id, json!({"color": "red"}))
        .await
        .problem(422, "validation_failed");
    patch(&t, "ORD-0000009999", json!({"note": "n"}))
        .await
        .problem(404, "not_found");
    let edited = patch(&t, &id, json!({"note": "by key"})).await.ok(200);
    assert_eq!(edited["note"], "by key");
    let h = t.get(&format!("/v1/orders/{id}/history")).await.ok(200);
    let actor = h["transitions"].as_array().unwrap().last().unwrap()["actor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        actor.starts_with("key:") && actor.len() == 12 && !actor.contains("alpha"),
        "{actor}"
    );
    // Once a shipment has shipped the address is fixed; tags can still change.
    let base = format!("/v1/orders/{id}");
    t.post(&format!("{base}/payments"), json!({"token": "tok_visa"}))
        .await
        .ok(200);
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    let sid = o["shipments"][0]["id"].as_str().unwrap();
    t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
    let address = json!({"shipping_address": {"line1": "x", "city": "y", "country": "US"}});
    let e = patch(&t, &id, address).await.problem(409, "invalid_transition");
    assert!(e["detail"].as_str().unwrap().contains("shipping address"), "{e}");
    patch(&t, &id, json!({"tags": ["late"]})).await.ok(200);
    // Idempotent like every mutation.
    let r = t
        .twice(
            Method::PATCH,
            &base,
            &json!({"note": "once"}).to_string(),
            "edit-1",
            200,
        )
        .await;
    assert_eq!(r.json()["note"], "once");
}

#[tokio::test]
async fn search_filters_combine_newest_first_with_stable_cursors() {
    let t = stocked().await;
    let mut ids = Vec::new();
    for i in 0..6u64 {
        t.clock.set(oms::domain::Millis(T0.0 + i * 60_000));
        let sku = if i % 2 == 0 { "sku-1" } else { "sku-2" };
        let email = if i < 3 { "ada@example.com" } else { "bob@example.com" };
        let tags = if i % 3 == 0 { json!(["vip"]) } else { json!([]) };
        let body = with(order_body("u-1", &[(sku, 1)]), json!({"email": email, "tags": tags}));
        ids.push(
            t.post("/v1/orders", body).await.ok(201)["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let list = |q: String| {
        let t = &t;
        async move {
            let page = t.get(&format!("/v1/orders?{q}")).await.ok(200);
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let pick = |idx: &[usize]| idx.iter().map(|i| ids[*i].clone()).collect::<Vec<_>>();
    assert_eq!(list("sku=sku-1".into()).await, pick(&[4, 2, 0]));
    assert_eq!(list("tag=vip".into()).await, pick(&[3, 0]));
    assert_eq!(list("email=ADA%40example.com".into()).await, pick(&[2, 1, 0]));
    let at = |i: u64| oms::domain::Millis(T0.0 + i * 60_000).rfc3339();
    assert_eq!(
        list(format!("created_after={}&created_before={}", at(1), at(4))).await,
        pick(&[3, 2, 1])
    );
    assert_eq!(
        list(format!("created_after={}&sku=sku-2&email=bob%40example.com", at(1))).await,
        pick(&[5, 3])
    );
    assert_eq!(
        list("tag=vip&sku=sku-2&user_id=u-1&status=payment_pending".into()).await,
        pick(&[3])
    );
    assert!(list("tag=vip&email=nobody%40example.com".into()).await.is_empty());
    // Pages of 1 through a filter: each order once, newest first, while new orders arrive.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/orders?sku=sku-1&limit=1&cursor={c}"),
            None => "/v1/orders?sku=sku-1&limit=1".into(),
        };
        let page = t.get(&q).await.ok(200);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string()),
        );
        t.order("u-1", &[("sku-1", 1)]).await.ok(201);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, pick(&[4, 2, 0]));
    // Edited tags move the order between tag filters.
    patch(&t, &ids[0], json!({"tags": ["returned"]})).await.ok(200);
    assert_eq!(list("tag=vip".into()).await, pick(&[3]));
    assert_eq!(list("tag=returned".into()).await, pick(&[0]));
    for bad in [
        "created_after=yesterday",
        "created_before=2026-13-01T00:00:00Z",
        "sku=a%20b",
        "tag=",
        "email=",
    ] {
        let e = t
            .get(&format!("/v1/orders?{bad}"))
            .await
            .problem(422, "validation_failed");
        assert_eq!(e["errors"][0]["field"], bad.split('=').next().unwrap(), "{bad}");
    }
}

#[tokio::test]
async fn partial_cancel_releases_stock_refunds_its_share_and_partial_fulfilment_ships_the_rest() {
    let t = stocked().await;
    let o = t.order("u-1", &[("sku-1", 3), ("sku-2", 1)]).await.ok(201);
    let id = o["id"].as_str().unwrap().to_string();
    let base = format!("/v1/orders/{id}");
    // Unpaid: one unit released and no longer due.
    let o = t
        .post(
            &format!("{base}/cancel"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "short"}),
        )
        .await
        .ok(200);
    assert_eq!(o["status"], "payment_pending");
    assert_eq!(
        o["cancelled_items"],
        json!([{"sku": "sku-1", "warehouse_id": "east", "quantity": 1}])
    );
    assert_eq!(o["cancelled_amount"], "10.00");
    assert_eq!(t.pair("sku-1", "east").await["reserved"], 2);
    let o = t
        .post(&format!("{base}/payments"), json!({"token": "tok_visa"}))
        .await
        .ok(200);
    assert_eq!(o["payment"]["captured_amount"], "30.00");
    // Paid: the unit's share is refunded and the order stays confirmed.
    let o = t
        .post(
            &format!("{base}/cancel"),
            json!({"items": [{"sku": "sku-2", "quantity": 1}]}),
        )
        .await
        .ok(200);
    assert_eq!(o["status"], "confirmed");
    assert_eq!(o["payment"]["refunded_amount"], "10.00");
    assert_eq!(o["refunds"][0]["status"], "succeeded");
    assert_eq!(t.pair("sku-2", "east").await["reserved"], 0);
    // More than is open is refused, naming the line.
    let e = t
        .post(
            &format!("{base}/cancel"),
            json!({"items": [{"sku": "sku-1", "quantity": 3}]}),
        )
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "items[0].quantity");
    // Partial fulfilment, then the rest.
    let o = t
        .post(
            &format!("{base}/fulfillments"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}]}),
        )
        .await
        .ok(200);
    assert_eq!(o["status"], "processing");
    assert_eq!(o["shipments"].as_array().unwrap().len(), 1);
    let sid = o["shipments"][0]["id"].as_str().unwrap().to_string();
    let o = t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
    assert_eq!(o["status"], "partially_shipped", "a unit is still open");
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    let shipments = o["shipments"].as_array().unwrap();
    assert_eq!(shipments.len(), 2);
    assert_eq!(shipments[1]["items"], json!([{"sku": "sku-1", "quantity": 1}]));
    let sid2 = shipments[1]["id"].as_str().unwrap().to_string();
    let o = t
        .post(&format!("{base}/shipments/{sid2}/ship"), json!({}))
        .await
        .ok(200);
    assert_eq!(o["status"], "shipped");
    let e = t
        .post(&format!("{base}/fulfillments"), json!({}))
        .await
        .problem(409, "invalid_transition");
    assert_eq!(e["from"], "shipped");
    let pair = t.pair("sku-1", "east").await;
    assert_eq!(
        (pair["on_hand"].as_u64(), pair["reserved"].as_u64()),
        (Some(98), Some(0))
    );
    // The state replays to the same figures.
    let t = t.restart().await;
    let o = t.get(&base).await.ok(200);
    assert_eq!(
        (&o["status"], &o["cancelled_amount"]),
        (&json!("shipped"), &json!("20.00"))
    );
    assert_eq!(t.pair("sku-2", "east").await["available"], 100);
}

#[tokio::test]
async fn goodwill_refunds_from_confirmation_and_returns_refunded_by_their_value() {
    let t = stocked().await;
    let mut body = order_body("u-1", &[("sku-1", 2)]);
    body["tax_amount"] = json!("2.00");
    let o = t.post("/v1/orders", body).await.ok(201);
    let base = format!("/v1/orders/{}", o["id"].as_str().unwrap());
    t.post(&format!("{base}/refunds"), json!({"amount": "1.00"}))
        .await
        .problem(409, "invalid_transition");
    t.post(&format!("{base}/payments"), json!({"token": "tok_visa"}))
        .await
        .ok(200);
    // Goodwill before delivery: refunded, and the order still ships.
    let r = t
        .post(&format!("{base}/refunds"), json!({"amount": "1.00", "reason": "late"}))
        .await
        .ok(201);
    assert_eq!(r["order"]["status"], "confirmed");
    assert_eq!(r["order"]["payment"]["refunded_amount"], "1.00");
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    let sid = o["shipments"][0]["id"].as_str().unwrap().to_string();
    t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
    t.post(&format!("{base}/shipments/{sid}/deliver"), json!({}))
        .await
        .ok(200);
    let ret = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "broken"}),
        )
        .await
        .ok(201);
    // One unit of 10.00 plus half the 2.00 tax.
    assert_eq!(ret["refundable_amount"], "11.00");
    let rid = ret["id"].as_str().unwrap().to_string();
    t.post(&format!("{base}/returns/{rid}/approve"), json!({}))
        .await
        .ok(200);
    let e = t
        .post(&format!("{base}/refunds"), json!({}))
        .await
        .problem(422, "validation_failed");
    assert_eq!(e["errors"][0]["field"], "amount");
    let r = t
        .post(&format!("{base}/refunds"), json!({"return_id": rid}))
        .await
        .ok(201);
    assert_eq!(r["amount"], "11.00");
    assert_eq!(r["order"]["status"], "partially_refunded");
    assert_eq!(r["order"]["returns"][0]["refundable_amount"], "0.00");
    assert_eq!(r["order"]["payment"]["refunded_amount"], "12.00");
}
