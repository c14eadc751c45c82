//! Server-sent events through the app: ids, types, resume after `Last-Event-ID`, the per-order
//! stream and its filtering.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt;

/// Longest wait for an expected event.
const EVENT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// An open event stream, parsed frame by frame.
struct Stream {
    body: Body,
    buf: String,
    comments: Vec<String>,
}

impl Stream {
    async fn open(t: &TestApp, uri: &str, last_event_id: Option<&str>) -> Stream {
        let mut b = Request::get(uri);
        if let Some(id) = last_event_id {
            b = b.header("last-event-id", id);
        }
        let resp = t.app.clone().oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Stream {
            body: resp.into_body(),
            buf: String::new(),
            comments: Vec::new(),
        }
    }

    /// The next event (comments are collected on the side), waiting at most [`EVENT_WAIT`].
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        self.comments.push(c.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if event.is_empty() {
                    continue;
                }
                return Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                };
            }
            let frame = tokio::time::timeout(EVENT_WAIT, self.body.frame())
                .await
                .expect("no event in time")
                .expect("stream ended")
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }

    /// Events until (and including) the first of type `kind`.
    async fn until(&mut self, kind: &str) -> Vec<Sse> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let done = e.event == kind;
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

async fn lifecycle(t: &TestApp) -> String {
    t.warehouse("east", 40.0, -75.0, 0).await;
    t.warehouse("west", 34.0, -118.0, 1).await;
    t.stock("sku-1", "east", 1).await;
    t.stock("sku-1", "west", 1).await;
    let o = t.order("u1", &[("sku-1", 2)]).await.ok(201);
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
    let r = t
        .post(
            &format!("{base}/returns"),
            json!({"items": [{"sku": "sku-1", "quantity": 1}], "reason": "x"}),
        )
        .await
        .ok(201);
    let ret = r["id"].as_str().unwrap();
    t.post(&format!("{base}/returns/{ret}/approve"), json!({}))
        .await
        .ok(200);
    t.post(
        &format!("{base}/refunds"),
        json!({"amount": "5", "return_id": ret, "reason": "r"}),
    )
    .await
    .ok(201);
    id
}

#[tokio::test]
async fn history_replays_every_event_type_with_dense_ids() {
    let t = TestApp::new().await;
    let id = lifecycle(&t).await;
    let mut s = Stream::open(&t, "/v1/events", Some("0")).await;
    let events = s.until("refund.created").await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    for k in [
        "warehouse.updated",
        "inventory.changed",
        "order.created",
        "payment.attempted",
        "payment.captured",
        "order.state_changed",
        "shipment.created",
        "shipment.shipped",
        "shipment.delivered",
        "return.requested",
        "refund.requested",
        "refund.created",
    ] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    assert_eq!(events[0].id, "1.0");
    // Ids increase strictly, as (lsn, idx).
    let pos = |e: &Sse| {
        let (l, i) = e.id.split_once('.').unwrap();
        (l.parse::<u64>().unwrap(), i.parse::<u64>().unwrap())
    };
    for w in events.windows(2) {
        assert!(pos(&w[0]) < pos(&w[1]), "{} then {}", w[0].id, w[1].id);
    }
    let created = events.iter().find(|e| e.event == "order.created").unwrap();
    assert_eq!(created.data["order_id"], id.as_str());
    assert_eq!(created.data["total_amount"], "20.00");
    let reserved: Vec<&Sse> = events
        .iter()
        .filter(|e| e.event == "inventory.changed" && e.data["cause"] == "placement")
        .collect();
    assert_eq!(reserved.len(), 2, "one per allocation");
    assert!(reserved.iter().all(|e| e.data["order_id"] == id.as_str()));
    let shipments: Vec<&Sse> = events.iter().filter(|e| e.event == "shipment.created").collect();
    assert_eq!(shipments.len(), 2, "split shipment");
    let ret = events.iter().find(|e| e.event == "return.requested").unwrap();
    assert_eq!(ret.data["return_id"], format!("RET-{}-1", &id[4..]));
    let refund = events.iter().find(|e| e.event == "refund.created").unwrap();
    assert_eq!(refund.data["amount"], "5.00");
    assert_eq!(refund.data["refund_id"], format!("REF-{}-1", &id[4..]));
    let change = events
        .iter()
        .find(|e| e.event == "order.state_changed" && e.data["to"] == "confirmed")
        .unwrap();
    assert_eq!(change.data["from"], "payment_pending");
    assert!(change.data["at"].is_string());
}

#[tokio::test]
async fn last_event_id_resumes_exactly_after_that_event() {
    let t = TestApp::new().await;
    lifecycle(&t).await;
    let mut all = Stream::open(&t, "/v1/events", Some("0")).await;
    let events = all.until("refund.created").await;
    // Resume in the middle of a multi-event record, after a whole record, and after the end.
    let placed = events.iter().position(|e| e.event == "order.created").unwrap();
    let mid = &events[placed + 1];
    assert!(mid.id.ends_with(".1"), "{}", mid.id);
    let mut s = Stream::open(&t, "/v1/events", Some(&mid.id)).await;
    assert_eq!(s.next().await.id, events[placed + 2].id);
    let lsn = mid.id.split_once('.').unwrap().0;
    let mut s = Stream::open(&t, "/v1/events", Some(lsn)).await;
    let next = s.next().await;
    assert!(
        next.id.starts_with(&format!("{}.", lsn.parse::<u64>().unwrap() + 1)),
        "{}",
        next.id
    );
    // Query parameter works like the header.
    let mut q = Stream::open(&t, &format!("/v1/events?last_event_id={}", mid.id), None).await;
    assert_eq!(q.next().await.id, events[placed + 2].id);

    // From the end: only live events, which arrive as they happen.
    let last = events.last().unwrap().id.clone();
    let mut live = Stream::open(&t, "/v1/events", Some(&last)).await;
    t.stock("sku-9", "east", 4).await;
    // The rest of the refund's record comes first, then the adjustment.
    let e = live.until("inventory.changed").await.pop().unwrap();
    assert_eq!(
        e.data,
        json!({"sku": "sku-9", "warehouse_id": "east", "on_hand": 4, "reserved": 0, "available": 4,
            "on_hand_delta": 4, "reserved_delta": 0, "cause": "adjustment", "order_id": null,
            "reason": "receiving", "at": e.data["at"]})
    );

    // A fresh connection without Last-Event-ID starts live.
    let mut fresh = Stream::open(&t, "/v1/events", None).await;
    t.warehouse("north", 50.0, -100.0, 3).await;
    assert_eq!(fresh.next().await.event, "warehouse.updated");

    let r = t.get("/v1/events?last_event_id=x.1").await;
    r.problem(422, "validation_failed");

    // Across a restart, the same ids resume the same way.
    let t = t.restart().await;
    let mut s = Stream::open(&t, "/v1/events", Some(&mid.id)).await;
    assert_eq!(s.next().await.id, events[placed + 2].id);
    assert!(s.comments.is_empty(), "{:?}", s.comments);
}

#[tokio::test]
async fn order_stream_carries_only_that_order() {
    let t = TestApp::new().await;
    let id = lifecycle(&t).await;
    let other = t.order("u2", &[("sku-1", 1)]).await;
    assert!(other.status == 201 || other.status == 409);
    let mut s = Stream::open(&t, &format!("/v1/orders/{id}/events"), Some("0")).await;
    let events = s.until("refund.created").await;
    assert!(events.iter().all(|e| e.data["order_id"] == id.as_str()), "{events:?}");
    assert!(events.iter().any(|e| e.event == "inventory.changed"));
    assert!(!events.iter().any(|e| e.event == "warehouse.updated"));
    // Live: a cancel of another order does not show up, this order's change does.
    t.get("/v1/orders/ORD-0000000999/events")
        .await
        .problem(404, "not_found");
    t.get("/v1/orders/nonsense/events").await.problem(404, "not_found");
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_disconnected() {
    const FEED_RECORDS: usize = 16;
    const RECORDS: usize = 400;
    let t = TestApp::with_config(Vec::new(), |c| c.feed_capacity = FEED_RECORDS).await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    // Opened and never read while the records are written: its buffer fills, the feed laps it.
    let mut s = Stream::open(&t, "/v1/events", None).await;
    for _ in 0..RECORDS {
        t.stock("sku-1", "east", 1).await;
    }
    let mut received = 0;
    loop {
        let frame = tokio::time::timeout(EVENT_WAIT, s.body.frame())
            .await
            .expect("the stream ends instead of hanging");
        match frame {
            None => break,
            Some(f) => {
                if let Ok(bytes) = f.unwrap().into_data() {
                    received += std::str::from_utf8(&bytes).unwrap().matches("event: ").count();
                }
            }
        }
    }
    assert!(
        received < RECORDS,
        "a lagging stream was not cut off ({received} events)"
    );
    // Reconnecting with Last-Event-ID catches up from the log: all 401 events are there.
    let mut again = Stream::open(&t, "/v1/events", Some("0")).await;
    let mut n = 0;
    while n < RECORDS + 1 {
        again.next().await;
        n += 1;
    }
}

/// Resuming from a position that snapshots have compacted out of the log: the stream says so in
/// a comment and continues from the oldest retained record, in order.
#[tokio::test]
async fn resuming_before_the_retained_log_says_so_and_continues() {
    let t = TestApp::with_config(Vec::new(), |c| c.wal.segment_size_bytes_max = 1024).await;
    t.warehouse("east", 40.7, -74.0, 1).await;
    for round in 0..2 {
        for i in 0..40 {
            t.stock(&format!("sku-{round}-{i}"), "east", 5).await;
        }
        let e = t.engine.clone();
        tokio::task::spawn_blocking(move || e.snapshot_now())
            .await
            .unwrap()
            .unwrap();
    }
    let (first_retained, _) = t.engine.read_log(1, u64::MAX, 1).unwrap();
    assert!(first_retained > 2, "the snapshots must have deleted early segments");
    let mut s = Stream::open(&t, "/v1/events", Some("1.0")).await;
    let first = s.next().await;
    assert!(
        s.comments.iter().any(|c| c.contains("compacted")),
        "comments: {:?}",
        s.comments
    );
    let lsn: u64 = first.id.split('.').next().unwrap().parse().unwrap();
    assert_eq!(lsn, first_retained, "continues from the oldest retained record");
    assert_eq!(first.event, "inventory.changed");
}

/// Opens `uri` with `Last-Event-ID: id`. The body is left unread (a stream that opened would
/// never end); read it only after checking the status.
async fn open_raw(t: &TestApp, uri: &str, id: Option<&str>) -> axum::response::Response {
    let mut req = Request::get(uri);
    if let Some(id) = id {
        req = req.header("last-event-id", id);
    }
    t.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
}

async fn open_status(t: &TestApp, uri: &str, id: &str) -> (axum::http::StatusCode, axum::http::HeaderMap) {
    let resp = open_raw(t, uri, Some(id)).await;
    (resp.status(), resp.headers().clone())
}

/// A position after the newest record names no event: 422, instead of a resume that wraps
/// around to the start of the log and replays all of it.
#[tokio::test]
async fn a_last_event_id_beyond_the_log_is_refused() {
    let t = TestApp::new().await;
    let id = lifecycle(&t).await;
    let (_, records) = t.engine.read_log(1, u64::MAX, 1_000_000).unwrap();
    let newest = records.last().unwrap().lsn;
    for beyond in [
        u64::MAX.to_string(),
        format!("{}.0", u64::MAX),
        (newest + 1).to_string(),
        format!("{}.3", newest + 1),
    ] {
        for (uri, header) in [
            ("/v1/events".to_string(), Some(beyond.as_str())),
            (format!("/v1/orders/{id}/events"), Some(beyond.as_str())),
            (format!("/v1/events?last_event_id={beyond}"), None),
        ] {
            let resp = open_raw(&t, &uri, header).await;
            assert_eq!(resp.status(), 422, "{uri} with {beyond}");
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["code"], "validation_failed", "{body}");
            assert_eq!(body["errors"][0]["field"], "Last-Event-ID", "{body}");
        }
    }
    // The newest position itself is fine: the stream starts live.
    let (status, _) = open_status(&t, "/v1/events", &newest.to_string()).await;
    assert_eq!(status, 200);
}

/// Replaying history reads the log; beyond `stream_replays_max` concurrent replays the next
/// stream is asked to come back (503 with Retry-After). Streams with nothing to replay are not
/// counted, and a replay that ends (here: its client goes away) gives its place back.
#[tokio::test]
async fn concurrent_log_replays_are_capped() {
    let t = TestApp::with_config(Vec::new(), |c| c.stream_replays_max = 1).await;
    t.warehouse("east", 40.0, -75.0, 0).await;
    // More events than a connection buffers, so an unread replay stays in progress.
    for _ in 0..300 {
        t.stock("sku-1", "east", 1).await;
    }
    let replaying = Stream::open(&t, "/v1/events", Some("0")).await;
    let (status, headers) = open_status(&t, "/v1/events", "0").await;
    assert_eq!(status, 503);
    assert_eq!(headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    t.raw(Method::GET, "/v1/events", "", &[("last-event-id", "1")])
        .await
        .problem(503, "unavailable");
    // Nothing to replay: no permit needed.
    let _live = Stream::open(&t, "/v1/events", None).await;
    let _from_the_end = Stream::open(&t, "/v1/events", Some("301")).await;

    drop(replaying);
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    loop {
        let (status, _) = open_status(&t, "/v1/events", "0").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay permit never came back"
        );
        tokio::task::yield_now().await;
    }
}

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
    vec!["sku-1", "sku-2"]
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
    assert!(seen.len() >= 14, "{seen:?}");
}
