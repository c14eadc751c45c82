//! The RabbitMQ relay against the real broker.

use crate::support::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The relay's flags for `exchange`.
fn relay_flags(exchange: &str) -> Vec<String> {
    vec![
        "--amqp-url".into(),
        BROKER_URL.into(),
        "--amqp-exchange".into(),
        exchange.into(),
    ]
}

fn flags(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `(lsn, idx)` of an event id.
fn position(id: &str) -> (u64, u64) {
    let (l, i) = id.split_once('.').expect("id is lsn.idx");
    (l.parse().unwrap(), i.parse().unwrap())
}

/// Ends a test's traffic with an event both sides can wait for.
async fn marker(s: &Server, name: &str) {
    let body = json!({"name": name, "country": "US"});
    let (st, _) = s.put(&format!("/v1/warehouses/{name}"), body).await;
    assert_eq!(st, 201);
}

fn is_marker(name: &'static str) -> impl Fn(&Seen) -> bool {
    move |e| e.kind == "warehouse.updated" && e.data["id"] == name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_lifecycle_arrives_in_order_with_its_routing_key_id_and_headers() {
    if !broker_available("amqp lifecycle").await {
        return;
    }
    let exchange = "oms.test.lifecycle";
    let mut consumer = consume(exchange).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = relay_flags(exchange);
    args.extend(["--sync".into(), "none".into()]);
    let s = Server::start(dir.path(), &flags(&args)).await;
    s.stocked("nyc", "mug", 10).await;
    let id = s.lifecycle("u1", "mug").await;
    marker(&s, "marker-end").await;

    let messages = consumer.until(|m| is_marker("marker-end")(&m.seen())).await;
    let sse = sse_replay(&s, is_marker("marker-end")).await;
    assert_eq!(dedup(&messages), sse, "the broker carries exactly what SSE replays");
    assert_eq!(messages.len(), sse.len(), "no duplicates without a crash");
    let mut last = (0, 0);
    for m in &messages {
        let seen = m.seen();
        assert_eq!(m.routing_key, seen.kind, "routing key = event type");
        assert_eq!(m.message_id, seen.id, "message_id = event id");
        assert_eq!(m.content_type, "application/json");
        assert_eq!(m.delivery_mode, 2, "persistent");
        assert!(m.timestamp.is_some_and(|t| t > 1_600_000_000), "{:?}", m.timestamp);
        assert_eq!(m.order_id_header.as_deref(), seen.data["order_id"].as_str(), "{seen:?}");
        assert_eq!(m.body["order_id"].as_str(), seen.data["order_id"].as_str());
        assert!(position(&m.message_id) > last, "log order");
        last = position(&m.message_id);
    }
    let kinds: Vec<&str> = messages
        .iter()
        .filter(|m| m.order_id_header.as_deref() == Some(id.as_str()))
        .map(|m| m.routing_key.as_str())
        .collect();
    for k in [
        "order.created",
        "payment.attempted",
        "payment.captured",
        "order.state_changed",
        "shipment.created",
        "shipment.shipped",
        "shipment.delivered",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let (st, ready) = s.get("/readyz").await;
    assert_eq!(st, 200);
    assert_eq!(ready["amqp_relay"]["connected"], true, "{ready}");
    s.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_lifecycle_load_then_restart_the_consumer_has_exactly_what_sse_replays() {
    const WORKERS: usize = 6;
    const LIFECYCLES_BEFORE_KILL: usize = 12;
    if !broker_available("amqp kill -9").await {
        return;
    }
    let exchange = "oms.test.kill9";
    let mut consumer = consume(exchange).await;
    let dir = tempfile::tempdir().unwrap();
    let args = relay_flags(exchange);
    // The production durability setting: fsync before acknowledging.
    let s = Arc::new(Server::start(dir.path(), &flags(&args)).await);
    s.stocked("nyc", "mug", 100_000).await;
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (s, done, stop) = (s.clone(), done.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                // A request cut by the kill panics inside this task only.
                let one = tokio::spawn({
                    let s = s.clone();
                    async move { s.lifecycle(&format!("w{w}-{i}"), "mug").await }
                });
                if one.await.is_err() {
                    return;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Kill while the workers are mid-lifecycle, once enough have gone through.
    let deadline = tokio::time::Instant::now() + WAIT;
    while done.load(Ordering::Relaxed) < LIFECYCLES_BEFORE_KILL {
        assert!(tokio::time::Instant::now() < deadline, "lifecycles progress");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let pid = s.child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    Arc::into_inner(s).expect("workers are done").kill().await;

    let s = Server::start(dir.path(), &flags(&args)).await;
    marker(&s, "marker-after-kill").await;
    let messages = consumer.until(|m| is_marker("marker-after-kill")(&m.seen())).await;
    let sse = sse_replay(&s, is_marker("marker-after-kill")).await;
    let created = sse.iter().filter(|e| e.kind == "order.created").count();
    assert!(created >= LIFECYCLES_BEFORE_KILL, "{created} orders");
    let deduped = dedup(&messages);
    assert_eq!(deduped.len(), sse.len(), "nothing missing, nothing extra");
    assert_eq!(
        deduped, sse,
        "after deduplication by id: exactly what SSE replays, in order"
    );
    s.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_keep_flowing_while_the_broker_is_unreachable_and_the_relay_catches_up_later() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: every connection is refused.
    let down = [
        "--amqp-url",
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "--amqp-exchange",
        "oms.test.catchup",
        "--sync",
        "none",
    ];
    let s = Server::start(dir.path(), &down).await;
    s.stocked("nyc", "mug", 10).await;
    for i in 0..3 {
        assert_eq!(s.post("/v1/orders", order(&format!("u{i}"), "mug", 1)).await.0, 201);
    }
    // The relay's first attempt fails on its own time: wait for it to be reported.
    let deadline = tokio::time::Instant::now() + WAIT;
    let ready = loop {
        let (st, ready) = s.get("/readyz").await;
        assert_eq!(
            st, 200,
            "a relay that is behind does not make the server unready: {ready}"
        );
        if ready["amqp_relay"]["last_error"].is_string() {
            break ready;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ready}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let relay = &ready["amqp_relay"];
    assert_eq!(relay["connected"], false, "{ready}");
    assert!(relay["lag_records"].as_u64().unwrap() >= 5, "{ready}");
    assert!(relay["reconnects_total"].as_u64().unwrap() >= 1, "{ready}");
    let metrics = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lag = metrics
        .lines()
        .find_map(|l| l.strip_prefix("oms_relay_lag_records "))
        .map(|v| v.parse::<f64>().unwrap());
    assert!(lag.is_some_and(|v| v >= 5.0), "{metrics}");
    s.kill().await;

    if !broker_available("amqp catch-up").await {
        return;
    }
    let mut consumer = consume("oms.test.catchup").await;
    let up = relay_flags("oms.test.catchup");
    let s = Server::start(dir.path(), &flags(&up)).await;
    marker(&s, "marker-catchup").await;
    let messages = consumer.until(|m| is_marker("marker-catchup")(&m.seen())).await;
    let sse = sse_replay(&s, is_marker("marker-catchup")).await;
    assert_eq!(
        dedup(&messages),
        sse,
        "everything from before the broker was reachable arrives"
    );
    let first: Vec<Value> = messages.iter().take(1).map(|m| m.body["id"].clone()).collect();
    assert_eq!(first, vec![json!("1.0")]);
    s.kill().await;
}
