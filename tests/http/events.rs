//! Server-sent events through the app: ids, types, resume after `Last-Event-ID`, the per-order
//! stream and its filtering.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::sse::{EVENT_WAIT, Sse, Stream, lifecycle};
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
