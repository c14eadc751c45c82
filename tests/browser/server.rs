//! The real `oms` binary for the browser tests: started on a free loopback port with a
//! temporary data directory (and API keys when asked), reached over HTTP by the tests' own
//! client and by Chromium. Every wait is on a log line with a deadline; the process is killed
//! when the `Server` is dropped.

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Longest wait for the process to listen and become ready.
const START_WAIT: Duration = Duration::from_secs(60);

pub struct Server {
    _child: Child,
    _dir: tempfile::TempDir,
    pub base: String,
    key: Option<String>,
    client: reqwest::Client,
}

impl Server {
    /// Starts `oms serve`; with `key`, in protected mode with that one API key.
    pub async fn start(key: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oms"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--sync", "none", "--data-dir"])
            .arg(dir.path())
            .env_remove("OMS_API_KEYS")
            .env_remove("OMS_LISTEN")
            .env_remove("OMS_DATA_DIR")
            .env("RUST_LOG", "oms::server=info,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(k) = key {
            cmd.env("OMS_API_KEYS", k);
        }
        let mut child = cmd.spawn().expect("oms starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, mut lines) = mpsc::unbounded_channel();
        // Keeps reading, so the child never blocks on a full pipe.
        tokio::spawn(async move {
            let mut r = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = r.next_line().await {
                let _ = tx.send(line);
            }
        });
        let addr = tokio::time::timeout(START_WAIT, async {
            let mut addr = None;
            while let Some(line) = lines.recv().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    addr = rest.split_whitespace().next().map(str::to_string);
                }
                if line.contains("oms::server: ready") {
                    return addr.expect("listening is logged before ready");
                }
            }
            panic!("oms exited before it was ready");
        })
        .await
        .expect("oms becomes ready");
        Server {
            _child: child,
            _dir: dir,
            base: format!("http://{addr}"),
            key: key.map(str::to_string),
            client: reqwest::Client::new(),
        }
    }

    /// One API call with the key; asserts a 2xx and returns the JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("oms answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn warehouse(&self, id: &str, name: &str, lat: f64, lon: f64) {
        self.put(
            &format!("/v1/warehouses/{id}"),
            json!({"name": name, "country": "US", "lat": lat, "lon": lon}),
        )
        .await;
    }

    /// Places an order of `quantity` × `sku` at 12.50 to Boston; returns its id.
    pub async fn order(&self, user: &str, sku: &str, quantity: u64) -> String {
        let o = self
            .post(
                "/v1/orders",
                json!({
                    "user_id": user, "currency": "USD",
                    "items": [{"sku": sku, "quantity": quantity, "unit_price": "12.50"}],
                    "shipping_amount": "4.99",
                    "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Boston", "region": "MA",
                                         "postal_code": "02101", "country": "US", "lat": 42.36, "lon": -71.06},
                }),
            )
            .await;
        o["id"].as_str().expect("an order id").to_string()
    }
}
