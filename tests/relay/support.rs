//! The `oms` process, an SSE reader and a RabbitMQ consumer for the relay tests.

#![allow(dead_code)]

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Longest wait for a process to start, a message to arrive, a stream to reach an event.
pub const WAIT: Duration = Duration::from_secs(60);
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A running `oms serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
    pub log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Server {
    /// Starts `oms serve` on a free loopback port with `extra` flags; waits until ready.
    pub async fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut c = Command::new(env!("CARGO_BIN_EXE_oms"));
        c.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env_remove("OMS_API_KEYS")
            .env_remove("OMS_AMQP_URL")
            .env_remove("OMS_ALLOW_PRIVATE_WEBHOOKS")
            .env("RUST_LOG", "oms::server=info,oms::relay=info,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().expect("oms starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut lines) = mpsc::unbounded_channel();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut rd = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.recv().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return rest.split_whitespace().next().unwrap().to_string();
                }
            }
            panic!("oms exited before listening: {:?}", log.lock().unwrap());
        })
        .await
        .expect("oms logs its address");
        let server = Server {
            child,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            log,
            lines,
        };
        server.wait_line("oms::server: ready").await;
        server
    }

    /// Waits for a log line containing `needle` (one not yet consumed).
    pub async fn wait_line(&self, needle: &str) {
        let log = self.log.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line {needle:?}: {:?}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("answered");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// A warehouse and stock for `sku` in it.
    pub async fn stocked(&self, wh: &str, sku: &str, n: i64) {
        let body = json!({"name": wh, "country": "US", "lat": 40.7, "lon": -74.0});
        let (s, b) = self.put(&format!("/v1/warehouses/{wh}"), body).await;
        assert!(s == 200 || s == 201, "{s} {b}");
        let body = json!({"sku": sku, "warehouse_id": wh, "delta": n});
        let (s, b) = self.post("/v1/inventory/adjustments", body).await;
        assert_eq!(s, 200, "{b}");
    }

    /// An order through its whole life: placed, paid, fulfilled, each shipment shipped and
    /// delivered. Returns its id.
    pub async fn lifecycle(&self, user: &str, sku: &str) -> String {
        let (st, o) = self.post("/v1/orders", order(user, sku, 1)).await;
        assert_eq!(st, 201, "{o}");
        let id = o["id"].as_str().unwrap().to_string();
        let base = format!("/v1/orders/{id}");
        let (st, o) = self.post(&format!("{base}/payments"), json!({"token": "tok_ok"})).await;
        assert_eq!(st, 200, "{o}");
        let (st, o) = self.post(&format!("{base}/fulfillments"), json!({})).await;
        assert_eq!(st, 200, "{o}");
        for sh in o["shipments"].as_array().unwrap() {
            let sid = sh["id"].as_str().unwrap();
            assert_eq!(
                self.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.0,
                200
            );
            assert_eq!(
                self.post(&format!("{base}/shipments/{sid}/deliver"), json!({})).await.0,
                200
            );
        }
        id
    }

    /// SIGKILL, and wait until the process is gone.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        tokio::time::timeout(WAIT, self.child.wait()).await.unwrap().unwrap();
    }
}

pub fn order(user: &str, sku: &str, quantity: u64) -> Value {
    json!({
        "user_id": user,
        "currency": "USD",
        "items": [{"sku": sku, "quantity": quantity, "unit_price": "2.50"}],
        "shipping_address": {"line1": "1 Main St", "city": "New York", "country": "US"},
    })
}

/// One event as a consumer sees it: id, type, data.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub id: String,
    pub kind: String,
    pub data: Value,
}

/// Reads `GET /v1/events` with `Last-Event-ID: 0` until an event satisfies `last`; every event
/// before and including it.
pub async fn sse_replay(s: &Server, last: impl Fn(&Seen) -> bool) -> Vec<Seen> {
    let resp = s
        .client
        .get(format!("{}/v1/events", s.base))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ").or(line.strip_prefix("id:")) {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ").or(line.strip_prefix("event:")) {
                        kind = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                        data = Some(serde_json::from_str::<Value>(v).unwrap());
                    }
                }
                if let (Some(id), Some(kind), Some(data)) = (id, kind, data) {
                    let seen = Seen { id, kind, data };
                    let done = last(&seen);
                    out.push(seen);
                    if done {
                        return;
                    }
                }
            }
        }
        panic!("the event stream ended");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the stream reaches the last event");
    out
}

/// A message as the broker delivered it.
#[derive(Clone, Debug)]
pub struct Message {
    pub routing_key: String,
    pub message_id: String,
    pub content_type: String,
    pub delivery_mode: u8,
    pub timestamp: Option<u64>,
    pub order_id_header: Option<String>,
    pub body: Value,
}

impl Message {
    pub fn seen(&self) -> Seen {
        Seen {
            id: self.body["id"].as_str().unwrap().to_string(),
            kind: self.body["type"].as_str().unwrap().to_string(),
            data: self.body["data"].clone(),
        }
    }
}

/// A queue bound to every routing key of `exchange`, and its messages.
pub struct Consumer {
    pub messages: mpsc::UnboundedReceiver<Message>,
    _conn: Connection,
}

/// True when RabbitMQ answers; false (with a printed note) when it does not and
/// `OMS_REQUIRE_BROKER` is unset; panics when it does not and the variable is `1`.
pub async fn broker_available(test: &str) -> bool {
    let up = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(BROKER_URL, ConnectionProperties::default()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if up {
        return true;
    }
    if std::env::var("OMS_REQUIRE_BROKER").as_deref() == Ok("1") {
        panic!("{test}: RabbitMQ is not reachable at 127.0.0.1:5672 and OMS_REQUIRE_BROKER=1");
    }
    println!("{test}: skipped: RabbitMQ is not reachable at 127.0.0.1:5672 (set OMS_REQUIRE_BROKER=1 to fail instead)");
    false
}

/// Declares `exchange` (as the relay does) and a fresh exclusive queue bound with `#`.
pub async fn consume(exchange: &str) -> Consumer {
    let conn = Connection::connect(BROKER_URL, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(exchange.into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind(
        q.name().clone(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut consumer = ch
        .basic_consume(q.name().clone(), "oms-test".into(), no_ack, FieldTable::default())
        .await
        .unwrap();
    let (tx, messages) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(d)) = consumer.next().await {
            let p = &d.properties;
            let order_id_header = p.headers().as_ref().and_then(|h| {
                h.inner().get("order_id").and_then(|v| match v {
                    lapin::types::AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).to_string()),
                    _ => None,
                })
            });
            let m = Message {
                routing_key: d.routing_key.to_string(),
                message_id: p.message_id().as_ref().map(|s| s.to_string()).unwrap_or_default(),
                content_type: p.content_type().as_ref().map(|s| s.to_string()).unwrap_or_default(),
                delivery_mode: p.delivery_mode().unwrap_or(0),
                timestamp: *p.timestamp(),
                order_id_header,
                body: serde_json::from_slice(&d.data).unwrap(),
            };
            if tx.send(m).is_err() {
                return;
            }
        }
    });
    Consumer { messages, _conn: conn }
}

impl Consumer {
    /// Messages until one satisfies `last` (included).
    pub async fn until(&mut self, last: impl Fn(&Message) -> bool) -> Vec<Message> {
        let mut out = Vec::new();
        let read = async {
            while let Some(m) = self.messages.recv().await {
                let done = last(&m);
                out.push(m);
                if done {
                    return;
                }
            }
            panic!("the consumer stopped");
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("the last message arrives");
        out
    }
}

/// The first occurrence of each id, in order (what a consumer that deduplicates keeps).
pub fn dedup(messages: &[Message]) -> Vec<Seen> {
    let mut ids = std::collections::HashSet::new();
    messages
        .iter()
        .filter(|m| ids.insert(m.message_id.clone()))
        .map(Message::seen)
        .collect()
}
