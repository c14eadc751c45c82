//! A cluster node: the real `oms` binary in cluster mode, on a free port, with its own data
//! directory.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Node {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
    pub id: String,
    pub client: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Node {
    /// Starts node `id` of cluster `name` on `dir` (not waiting for a role).
    pub fn start(url: &str, name: &str, id: &str, dir: &Path) -> Node {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--sync", "always"])
            .arg("--data-dir")
            .arg(dir)
            .args(["--cluster-url", url, "--cluster-name", name, "--node-id", id])
            .env_remove("OMS_API_KEYS")
            .env_remove("OMS_ADVERTISE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("oms starts");
        Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
            id: id.into(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(10));
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// `GET /v1/cluster`, `None` while the node does not answer.
    pub async fn cluster(&self) -> Option<Value> {
        match self.call(reqwest::Method::GET, "/v1/cluster", None).await {
            (200, v) => Some(v),
            _ => None,
        }
    }

    /// Waits until the node reports `role`.
    pub async fn wait_role(&self, role: &str, within: Duration) -> Value {
        super::support::wait_for(&format!("{} to be {role}", self.id), within, || async {
            self.cluster().await.filter(|v| v["role"] == role)
        })
        .await
    }

    /// Starts the node again on its directory as a standby. A node whose log holds records
    /// the cluster's log does not (fsynced locally, never acknowledged: the kill came before
    /// the PubAck) refuses to start, as documented; its directory is then moved away and it
    /// starts empty. True when that happened.
    pub async fn rejoin(&mut self, url: &str, name: &str, within: Duration) -> bool {
        let mut moved = false;
        for _ in 0..2 {
            *self = Node::start(url, name, &self.id.clone(), &self.dir.clone());
            let deadline = tokio::time::Instant::now() + within;
            let exited = loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    break Some(status);
                }
                if self.cluster().await.is_some_and(|v| v["role"] == "standby") {
                    break None;
                }
                assert!(tokio::time::Instant::now() < deadline, "{} did not rejoin", self.id);
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            match exited {
                None => return moved,
                Some(status) => {
                    assert!(!moved, "{} exited again: {status}", self.id);
                    let nanos = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap();
                    let aside = self.dir.with_extension(format!("diverged-{}", nanos.as_nanos()));
                    std::fs::rename(&self.dir, aside).unwrap();
                    moved = true;
                }
            }
        }
        moved
    }

    /// SIGKILL.
    pub async fn kill9(&mut self) {
        self.child.kill().await.expect("kill -9");
    }

    /// A warehouse and stock of `sku` in it.
    pub async fn stock(&self, sku: &str, units: u64) {
        let wh = json!({"name": "W", "country": "US", "lat": 40.7, "lon": -74.0, "priority": 0});
        let (s, b) = self.call(reqwest::Method::PUT, "/v1/warehouses/w1", Some(wh)).await;
        assert!(s == 200 || s == 201, "{s} {b}");
        let (s, b) = self
            .call(
                reqwest::Method::PUT,
                &format!("/v1/inventory/{sku}/w1"),
                Some(json!({"on_hand": units})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Places an order of one `sku` (201 when acknowledged).
    pub async fn order(&self, sku: &str, key: &str) -> (u16, Value) {
        place(&self.client, &self.base, sku, key).await
    }
}

/// Places an order of one `sku` on the node at `base` (201 when acknowledged).
pub async fn place(client: &reqwest::Client, base: &str, sku: &str, key: &str) -> (u16, Value) {
    {
        let body = json!({
            "user_id": "u1", "currency": "USD",
            "items": [{"sku": sku, "quantity": 1, "unit_price": "1.00"}],
            "shipping_amount": "0.00",
            "shipping_address": {"name": "A", "line1": "1 Main St", "city": "Boston", "state": "MA",
                                 "zip": "02101", "country": "US", "lat": 42.36, "lon": -71.06}
        });
        let req = client
            .post(format!("{base}/v1/orders"))
            .header("Idempotency-Key", key)
            .json(&body)
            .timeout(Duration::from_secs(10));
        match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }
}
