//! Events complete enough to mirror state (issue 11): `inventory.changed` for every change of a
//! pair (partial cancellations and partial fulfilments included), with its figures, folding from `Last-Event-ID: 0` to the inventory (live, replayed,
//! resumed in the middle, after a restart); `order.state_changed` for every status change;
//! `?types=`; every event against its JSON schema in docs/API.md's catalogue.

use crate::sse::{EVENT_WAIT, Sse, Stream, lifecycle};
use crate::support::TestApp;
use serde_json::{Value, json};

/// Places, pays, fulfils, ships, cancels, expires, declines, returns with restock, adjusts and
/// counts: every cause of an `inventory.changed`. Returns the SKUs it touched.
async fn every_stock_change(t: &TestApp) -> Vec<&'static str> {
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.warehouse("west", 34.0, -118.0, 1).await;
    t.stock("sku-1", "east", 5).await;
    t.stock("sku-1", "west", 2).await;
    t.stock("sku-2", "east", 4).await;
    // Shipped (split over both warehouses), delivered, returned and restocked.
    let id = lifecycle_with(t, &[("sku-1", 6), ("sku-2", 1)]).await;
    let base = format!("/v1/orders/{id}");
    let ret = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 2}], "reason": "too many"}),
        )
        .await
        .ok(201);
    let rid = ret["id"].as_str().unwrap();
    t.post(&format!("{base}/returns/{rid}/approve"), json!({}))
        .await
        .ok(200);
    t.post(
        &format!("{base}/returns/{rid}/receive"),
        json!({"warehouse_id": "west", "restock": true}),
    )
    .await
    .ok(200);
    // Cancelled after payment.
    let o = t.order("u2", &[("sku-2", 2)]).await.ok(201);
    let oid = o["id"].as_str().unwrap();
    t.post(&format!("/v1/orders/{oid}/payments"), json!({"token": "tok_ok"}))
        .await
        .ok(200);
    t.post(
        &format!("/v1/orders/{oid}/cancel"),
        json!({"reason": "changed my mind"}),
    )
    .await
    .ok(200);
    // Declined.
    let o = t.order("u3", &[("sku-2", 1)]).await.ok(201);
    let oid = o["id"].as_str().unwrap();
    t.post(
        &format!("/v1/orders/{oid}/payments"),
        json!({"token": "tok_chargeDeclined"}),
    )
    .await
    .problem(402, "payment_declined");
    // Expired: the clock passes the reservation, the expiry task cancels it.
    let o = t.order("u4", &[("sku-1", 1)]).await.ok(201);
    let oid = o["id"].as_str().unwrap().to_string();
    t.clock.advance_ms(16 * 60 * 1000);
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    while t.get(&format!("/v1/orders/{oid}")).await.ok(200)["status"] != "cancelled" {
        assert!(tokio::time::Instant::now() < deadline, "the reservation did not expire");
        tokio::task::yield_now().await;
    }
    // Left reserved, then counted and adjusted.
    t.order("u5", &[("sku-2", 1)]).await.ok(201);
    t.put("/v1/inventory/sku-2/west", json!({"on_hand": 3})).await.ok(200);
    t.stock("sku-1", "east", 4).await;
    partly_cancelled_and_fulfilled(t).await;
    vec!["sku-1", "sku-2"]
}

/// Partial cancellation (its units released: a `cancellation`), an edit, a partial fulfilment
/// (no stock moves until its shipment ships), then the last open unit cancelled too.
async fn partly_cancelled_and_fulfilled(t: &TestApp) {
    let o = t.order("u6", &[("sku-1", 3)]).await.ok(201);
    let base = format!("/v1/orders/{}", o["id"].as_str().unwrap());
    let one = json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "short"});
    t.post(&format!("{base}/cancel"), one.clone()).await.ok(200);
    t.post(&format!("{base}/payments"), json!({"token": "tok_1234"}))
        .await
        .ok(200);
    let edit = json!({"note": "ring twice", "tags": ["vip"]});
    t.raw(axum::http::Method::PATCH, &base, &edit.to_string(), &[])
        .await
        .ok(200);
    let f = json!({"items": [{"sku": "sku-1", "quantity": 1}]});
    let o = t.post(&format!("{base}/fulfillments"), f).await.ok(200);
    let sid = o["shipments"][0]["id"].as_str().unwrap();
    t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
    t.post(&format!("{base}/cancel"), one).await.ok(200);
}

/// An order of `lines`, paid, fulfilled, every shipment shipped and delivered.
async fn lifecycle_with(t: &TestApp, lines: &[(&str, u64)]) -> String {
    let o = t.order("u1", lines).await.ok(201);
    let id = o["id"].as_str().unwrap().to_string();
    let base = format!("/v1/orders/{id}");
    t.post(&format!("{base}/payments"), json!({"token": "tok_1234"}))
        .await
        .ok(200);
    let o = t.post(&format!("{base}/fulfillments"), json!({})).await.ok(200);
    for s in o["shipments"].as_array().unwrap() {
        let sid = s["id"].as_str().unwrap();
        t.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.ok(200);
        t.post(&format!("{base}/shipments/{sid}/deliver"), json!({}))
            .await
            .ok(200);
    }
    id
}

/// Every event of `uri` (a stream of everything) from `from` up to the newest record, read
/// until a marker adjustment made by this call (a SKU of its own) arrives.
async fn all_events(t: &TestApp, uri: &str, from: &str) -> Vec<Sse> {
    static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let marker = format!("marker-{}", MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let mut s = Stream::open(t, uri, Some(from)).await;
    t.stock(&marker, "east", 1).await;
    let mut out = Vec::new();
    loop {
        let e = s.next().await;
        if e.event == "inventory.changed" && e.data["sku"] == marker.as_str() {
            return out;
        }
        out.push(e);
    }
}

/// Each pair's last figures in the `inventory.changed` events, folded in order.
fn fold(events: &[Sse]) -> std::collections::BTreeMap<(String, String), (u64, u64, u64)> {
    let mut pairs = std::collections::BTreeMap::new();
    for e in events.iter().filter(|e| e.event == "inventory.changed") {
        let d = &e.data;
        assert_eq!(
            d["available"].as_u64(),
            Some(d["on_hand"].as_u64().unwrap() - d["reserved"].as_u64().unwrap())
        );
        let key = (
            d["sku"].as_str().unwrap().to_string(),
            d["warehouse_id"].as_str().unwrap().to_string(),
        );
        pairs.insert(
            key,
            (
                d["on_hand"].as_u64().unwrap(),
                d["reserved"].as_u64().unwrap(),
                d["available"].as_u64().unwrap(),
            ),
        );
    }
    pairs
}

async fn assert_fold_matches_inventory(t: &TestApp, events: &[Sse], skus: &[&str]) {
    let folded = fold(events);
    for sku in skus {
        let inv = t.get(&format!("/v1/inventory/{sku}")).await.ok(200);
        for w in inv["warehouses"].as_array().unwrap() {
            let key = (sku.to_string(), w["warehouse_id"].as_str().unwrap().to_string());
            let want = (
                w["on_hand"].as_u64().unwrap(),
                w["reserved"].as_u64().unwrap(),
                w["available"].as_u64().unwrap(),
            );
            assert_eq!(folded.get(&key), Some(&want), "{key:?}");
        }
    }
}

#[tokio::test]
async fn folding_inventory_changed_from_zero_gives_the_inventory() {
    let t = TestApp::new().await;
    // A live stream from the start sees the same events as a replay from the log.
    let mut live = Stream::open(&t, "/v1/events", None).await;
    let skus = every_stock_change(&t).await;
    let replayed = all_events(&t, "/v1/events", "0").await;
    let causes: std::collections::BTreeSet<&str> = replayed
        .iter()
        .filter(|e| e.event == "inventory.changed")
        .map(|e| e.data["cause"].as_str().unwrap())
        .collect();
    let all_causes = [
        "adjustment",
        "placement",
        "cancellation",
        "expiry",
        "payment_declined",
        "shipment",
        "restock",
    ];
    assert_eq!(causes, all_causes.into_iter().collect(), "every cause is seen");
    assert_fold_matches_inventory(&t, &replayed, &skus).await;
    let mut seen = Vec::new();
    while seen.len() < replayed.len() {
        seen.push(live.next().await);
    }
    for (a, b) in seen.iter().zip(&replayed) {
        assert_eq!(
            (&a.id, &a.event, &a.data),
            (&b.id, &b.event, &b.data),
            "live and replay agree"
        );
    }
    // Resuming in the middle gives the same events after that point (the figures are computed
    // back from the newest ones, not folded from the start).
    let mid = &replayed[replayed.len() / 2];
    let resumed = all_events(&t, "/v1/events", &mid.id).await;
    let after: Vec<&Sse> = replayed.iter().skip(replayed.len() / 2 + 1).collect();
    assert_eq!(resumed.len(), after.len() + 1, "the earlier marker is in between");
    for (a, b) in resumed.iter().zip(&after) {
        assert_eq!((&a.id, &a.data), (&b.id, &b.data));
    }
    // And after a restart, from the log alone.
    let t = t.restart().await;
    let again = all_events(&t, "/v1/events", "0").await;
    for (a, b) in again.iter().zip(&replayed) {
        assert_eq!(
            (&a.id, &a.event, &a.data),
            (&b.id, &b.event, &b.data),
            "replay after a restart agrees"
        );
    }
    assert_fold_matches_inventory(&t, &again, &skus).await;
}

#[tokio::test]
async fn every_status_change_has_a_state_changed_event() {
    let t = TestApp::new().await;
    let id = lifecycle(&t).await;
    let events = all_events(&t, "/v1/events", "0").await;
    let changes: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.event == "order.state_changed" && e.data["order_id"] == id.as_str())
        .map(|e| {
            (
                e.data["from"].as_str().unwrap().to_string(),
                e.data["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let history = t.get(&format!("/v1/orders/{id}/history")).await.ok(200);
    let transitions: Vec<(String, String)> = history["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["from"].is_null())
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_string(),
                t["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(changes, transitions);
    assert_eq!(changes[0], ("pending".to_string(), "payment_pending".to_string()));
}

#[tokio::test]
async fn types_filter_keeps_only_those_types_with_the_same_ids() {
    let t = TestApp::new().await;
    lifecycle(&t).await;
    let all = all_events(&t, "/v1/events", "0").await;
    let kept = all_events(&t, "/v1/events?types=order.state_changed,inventory.changed", "0").await;
    let want: Vec<&Sse> = all
        .iter()
        .filter(|e| e.event == "order.state_changed" || e.event == "inventory.changed")
        .collect();
    // The second read also sees the first read's marker.
    assert_eq!(kept.len(), want.len() + 1);
    for (a, b) in kept.iter().zip(&want) {
        assert_eq!((&a.id, &a.event), (&b.id, &b.event));
    }
    let r = t.get("/v1/events?types=order.created,order.exploded").await;
    let p = r.problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "types");
    t.get("/v1/events?types=order.created&types=order.created")
        .await
        .problem(422, "validation_failed");
}

/// The event catalogue of docs/API.md: each type's JSON schema, by type.
fn documented_schemas() -> std::collections::BTreeMap<String, Value> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    let section = doc
        .split("### Event catalogue")
        .nth(1)
        .expect("an event catalogue section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = std::collections::BTreeMap::new();
    for block in section.split("```json").skip(1) {
        let json = block.split("```").next().unwrap();
        let schema: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let kind = schema["title"]
            .as_str()
            .expect("each schema's title is its type")
            .to_string();
        out.insert(kind, schema);
    }
    out
}

/// A small JSON-schema check: type (with "null" unions), required, no undocumented property.
fn conforms(v: &Value, schema: &Value, at: &str) {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
        _ => vec![],
    };
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert!(
        types.is_empty() || types.contains(&kind) || (kind == "integer" && types.contains(&"number")),
        "{at}: {v} is not {types:?}"
    );
    if let (Value::Object(o), Some(props)) = (v, schema["properties"].as_object()) {
        for r in schema["required"].as_array().into_iter().flatten() {
            assert!(o.contains_key(r.as_str().unwrap()), "{at}: missing {r}");
        }
        for (k, x) in o {
            let p = props
                .get(k)
                .unwrap_or_else(|| panic!("{at}: undocumented property {k}"));
            conforms(x, p, &format!("{at}.{k}"));
        }
    }
    if let (Value::Array(items), Some(item)) = (v, schema.get("items")) {
        for (i, x) in items.iter().enumerate() {
            conforms(x, item, &format!("{at}[{i}]"));
        }
    }
}

#[tokio::test]
async fn every_event_conforms_to_its_documented_schema() {
    let schemas = documented_schemas();
    let catalogue: Vec<&str> = oms::api::api_event::EVENT_TYPES.to_vec();
    assert_eq!(
        schemas.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut c = catalogue.clone();
            c.sort();
            c
        },
        "the documented catalogue is the served one"
    );
    let t = TestApp::new().await;
    every_stock_change(&t).await;
    // A refund too.
    lifecycle(&t).await;
    let events = all_events(&t, "/v1/events", "0").await;
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        let schema = schemas
            .get(&e.event)
            .unwrap_or_else(|| panic!("{} is not in the catalogue", e.event));
        conforms(&e.data, schema, &e.event);
        seen.insert(e.event.clone());
    }
    assert!(seen.len() >= 16, "{seen:?}");
    for kind in ["order.updated", "order.items_cancelled"] {
        assert!(seen.contains(kind), "{kind} is emitted: {seen:?}");
    }
}

/// After snapshots compacted the start of the log away, a replay starts in the middle of the
/// history, yet its figures are the true ones (computed back from the newest), not counts
/// from zero.
#[tokio::test]
async fn figures_stay_true_when_the_log_start_is_compacted() {
    let t = TestApp::with_config(Vec::new(), |c| c.wal.segment_size_bytes_max = 1024).await;
    t.warehouse("east", 40.7, -74.0, 1).await;
    for _ in 0..2 {
        for _ in 0..40 {
            t.stock("sku-a", "east", 1).await;
        }
        let e = t.engine.clone();
        tokio::task::spawn_blocking(move || e.snapshot_now())
            .await
            .unwrap()
            .unwrap();
    }
    let (first_retained, _) = t.engine.read_log(1, u64::MAX, 1).unwrap();
    assert!(first_retained > 2, "the snapshots must have deleted early segments");
    let events = all_events(&t, "/v1/events", "0").await;
    let on_hand: Vec<u64> = events
        .iter()
        .filter(|e| e.event == "inventory.changed" && e.data["sku"] == "sku-a")
        .map(|e| e.data["on_hand"].as_u64().unwrap())
        .collect();
    assert!(on_hand.len() < 80, "some were compacted: {}", on_hand.len());
    assert_eq!(on_hand.last(), Some(&80));
    let first = 80 - on_hand.len() as u64 + 1;
    assert_eq!(on_hand, (first..=80).collect::<Vec<_>>(), "each one more than the last");
    assert_fold_matches_inventory(&t, &events, &["sku-a"]).await;
}
