//! The real `oms` binary: started on a free port with a temporary data directory, driven over
//! HTTP, stopped with SIGTERM or SIGKILL and started again.
//!
//! Every wait is on a condition with a deadline: a log line, `/readyz`, an exit status.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Longest wait for a process to log a line, become ready or exit.
const PROCESS_WAIT: Duration = Duration::from_secs(30);

fn command(dir: &Path, listen: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oms"));
    c.arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env_remove("OMS_API_KEYS")
        .env_remove("OMS_LISTEN")
        .env_remove("OMS_DATA_DIR")
        .env_remove("OMS_SYNC")
        .env("RUST_LOG", "oms::server=info,warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// A running `oms` process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    /// Every stderr line so far.
    log: Arc<Mutex<Vec<String>>>,
    lines: mpsc::UnboundedReceiver<String>,
}

/// Forwards a child's stderr, line by line, to a log and a channel (and keeps reading, so the
/// child never blocks on a full pipe).
fn drain_stderr(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, mpsc::UnboundedReceiver<String>) {
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::unbounded_channel();
    let sink = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    (log, rx)
}

impl Server {
    /// Starts `oms serve` on a free loopback port and waits until it is ready.
    pub(crate) async fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_with(command(dir, "127.0.0.1:0", extra)).await
    }

    async fn start_with(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("oms starts");
        let (log, mut lines) = drain_stderr(&mut child);
        let addr = tokio::time::timeout(PROCESS_WAIT, async {
            while let Some(line) = lines.recv().await {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return rest.split_whitespace().next().unwrap().to_string();
                }
            }
            panic!("oms exited before listening: {:?}", log.lock().unwrap());
        })
        .await
        .expect("oms logs its listen address");
        let mut server = Server {
            child,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            log,
            lines,
        };
        server.wait_ready().await;
        server
    }

    /// Waits for the server's `ready` log line (no polling), then checks `/readyz` agrees.
    async fn wait_ready(&mut self) {
        let log = self.log.clone();
        tokio::time::timeout(PROCESS_WAIT, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains("oms::server: ready") {
                    return;
                }
            }
            panic!("oms exited before it was ready: {:?}", log.lock().unwrap());
        })
        .await
        .expect("oms becomes ready");
        let r = self.client.get(format!("{}/readyz", self.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "ready logged, so /readyz must answer 200");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request answered");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// SIGTERM, then the exit status.
    async fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = wait_exit(&mut self.child).await;
        // Let the stderr reader reach the end of the stream.
        while tokio::time::timeout(PROCESS_WAIT, self.lines.recv())
            .await
            .ok()
            .flatten()
            .is_some()
        {}
        let log = self.log.lock().unwrap().clone();
        (status, log)
    }

    /// SIGKILL, then wait for the process to be gone.
    pub(crate) async fn kill(mut self) {
        self.child.start_kill().unwrap();
        wait_exit(&mut self.child).await;
    }

    pub(crate) async fn warehouse(&self, id: &str, lat: f64, lon: f64) {
        let (s, b) = self
            .put(
                &format!("/v1/warehouses/{id}"),
                json!({"name": id, "country": "US", "lat": lat, "lon": lon}),
            )
            .await;
        assert!(s == 201 || s == 200, "{s} {b}");
    }

    pub(crate) async fn stock(&self, sku: &str, wh: &str, delta: i64) {
        let (s, b) = self
            .post(
                "/v1/inventory/adjustments",
                json!({"sku": sku, "warehouse_id": wh, "delta": delta}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
}

pub(crate) async fn wait_exit(child: &mut Child) -> ExitStatus {
    tokio::time::timeout(PROCESS_WAIT, child.wait())
        .await
        .expect("oms exits in time")
        .unwrap()
}

/// Runs `oms` expecting it to refuse to start; returns its exit code and stderr.
async fn refused(mut cmd: Command) -> (i32, String) {
    let child = cmd.spawn().unwrap();
    let out = tokio::time::timeout(PROCESS_WAIT, child.wait_with_output())
        .await
        .expect("oms exits in time")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn order(user: &str, sku: &str, quantity: u64) -> Value {
    json!({
        "user_id": user,
        "currency": "EUR",
        "items": [{"sku": sku, "quantity": quantity, "unit_price": "2.50"}],
        "shipping_address": {"line1": "1 Rue", "city": "Paris", "country": "FR", "lat": 48.9, "lon": 2.35},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_over_http_then_sigterm_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--sync", "none"]).await;
    assert_eq!(s.get("/healthz").await.0, 200);
    s.warehouse("paris", 48.8, 2.3).await;
    s.warehouse("lyon", 45.7, 4.8).await;
    s.stock("mug", "paris", 1).await;
    s.stock("mug", "lyon", 2).await;
    let (st, o) = s.post("/v1/orders", order("u1", "mug", 3)).await;
    assert_eq!(st, 201, "{o}");
    assert_eq!(o["total_amount"], "7.50");
    let id = o["id"].as_str().unwrap().to_string();
    let base = format!("/v1/orders/{id}");
    let (st, o) = s.post(&format!("{base}/payments"), json!({"token": "tok_ok"})).await;
    assert_eq!((st, o["status"].as_str()), (200, Some("confirmed")));
    let (st, o) = s.post(&format!("{base}/fulfillments"), json!({})).await;
    assert_eq!(st, 200);
    let shipments: Vec<String> = o["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shipments.len(), 2);
    for sid in &shipments {
        assert_eq!(s.post(&format!("{base}/shipments/{sid}/ship"), json!({})).await.0, 200);
        assert_eq!(
            s.post(&format!("{base}/shipments/{sid}/deliver"), json!({})).await.0,
            200
        );
    }
    let (_, o) = s.get(&base).await;
    assert_eq!(o["status"], "delivered");
    let metrics = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("oms_wal_records_total"), "{metrics}");

    let (status, log) = s.terminate().await;
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");

    let s = Server::start(dir.path(), &["--sync", "none"]).await;
    let (st, again) = s.get(&base).await;
    assert_eq!(st, 200);
    assert_eq!(again, o, "the order survives the restart unchanged");
    let (_, inv) = s.get("/v1/inventory/mug").await;
    assert_eq!(inv["total_available"], 0);
    let on_hand: u64 = inv["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["on_hand"].as_u64().unwrap())
        .sum();
    assert_eq!(on_hand, 0, "shipped units left the building");
    s.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_sells_exactly_the_stock() {
    const STOCK: u64 = 50;
    const BUYERS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(Server::start(dir.path(), &["--sync", "none"]).await);
    s.warehouse("paris", 48.8, 2.3).await;
    s.stock("drop", "paris", STOCK as i64).await;
    let mut tasks = Vec::with_capacity(BUYERS);
    for i in 0..BUYERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.post("/v1/orders", order(&format!("buyer-{i}"), "drop", 1)).await
        }));
    }
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == 409 {
            assert_eq!(body["code"], "insufficient_stock", "{body}");
            assert_eq!(body["lines"][0]["sku"], "drop");
        }
        *counts.entry(status).or_default() += 1;
    }
    assert_eq!(counts.get(&201), Some(&(STOCK as usize)), "{counts:?}");
    assert_eq!(counts.get(&409), Some(&(BUYERS - STOCK as usize)), "{counts:?}");
    let (_, pair) = s.get("/v1/inventory/drop/paris").await;
    assert_eq!(pair["reserved"], STOCK);
    assert_eq!(pair["available"], 0);
    assert_eq!(pair["on_hand"], STOCK);
    let (_, page) = s.get("/v1/orders?limit=500").await;
    assert_eq!(page["data"].as_array().unwrap().len(), STOCK as usize);
    Arc::into_inner(s).expect("all requests done").kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_acknowledged() {
    const STOCK_PER_WAREHOUSE: u64 = 400;
    const WORKERS: usize = 8;
    const ORDERS_PER_WORKER_MAX: usize = 200;
    const ACKED_BEFORE_KILL: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    // The production durability setting: fsync before acknowledging.
    let s = Arc::new(Server::start(dir.path(), &[]).await);
    s.warehouse("paris", 48.8, 2.3).await;
    s.warehouse("lyon", 45.7, 4.8).await;
    s.stock("tee", "paris", STOCK_PER_WAREHOUSE as i64).await;
    s.stock("tee", "lyon", STOCK_PER_WAREHOUSE as i64).await;

    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, mut progress) = mpsc::unbounded_channel::<()>();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (s, acked, stop, progress_tx) = (s.clone(), acked.clone(), stop.clone(), progress_tx.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..ORDERS_PER_WORKER_MAX {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let quantity = 1 + ((w + i) % 2) as u64;
                let req = s
                    .client
                    .post(format!("{}/v1/orders", s.base))
                    .json(&order(&format!("w{w}"), "tee", quantity))
                    .send()
                    .await;
                let Ok(resp) = req else { return };
                if resp.status() != 201 {
                    continue;
                }
                let Ok(body) = resp.json::<Value>().await else { return };
                acked
                    .lock()
                    .unwrap()
                    .push((body["id"].as_str().unwrap().to_string(), quantity));
                let _ = progress_tx.send(());
            }
        }));
    }
    drop(progress_tx);
    let mut seen = 0;
    while seen < ACKED_BEFORE_KILL {
        tokio::time::timeout(PROCESS_WAIT, progress.recv())
            .await
            .expect("orders are acknowledged")
            .expect("workers still running");
        seen += 1;
    }
    // Kill while the workers are still sending.
    let killer = s.clone();
    let pid = killer.child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    drop(killer);
    let mut old = Arc::into_inner(s).expect("workers are done");
    wait_exit(&mut old.child).await;
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    let s = Server::start(dir.path(), &[]).await;
    for (id, quantity) in &acked {
        let (st, o) = s.get(&format!("/v1/orders/{id}")).await;
        assert_eq!(st, 200, "acknowledged order {id} lost");
        assert_eq!(o["status"], "payment_pending");
        assert_eq!(o["items"][0]["quantity"], *quantity);
    }
    // Stock adds up: nothing was created or lost, and every reserved unit belongs to an order
    // that is visible (acknowledged or durable-but-unanswered).
    let (_, inv) = s.get("/v1/inventory/tee").await;
    let sum = |k: &str| -> u64 {
        inv["warehouses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w[k].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum("on_hand"), 2 * STOCK_PER_WAREHOUSE);
    let acked_units: u64 = acked.iter().map(|(_, q)| q).sum();
    assert!(
        sum("reserved") >= acked_units,
        "reserved {} < acked {acked_units}",
        sum("reserved")
    );
    let mut visible_units = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orders?limit=500&cursor={c}"),
            None => "/v1/orders?limit=500".to_string(),
        };
        let (_, page) = s.get(&path).await;
        for o in page["data"].as_array().unwrap() {
            assert_eq!(o["status"], "payment_pending");
            visible_units += o["items"][0]["quantity"].as_u64().unwrap();
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        sum("reserved"),
        visible_units,
        "every reservation belongs to a visible order"
    );
    // The restarted server takes new orders.
    assert_eq!(s.post("/v1/orders", order("after", "tee", 1)).await.0, 201);
    s.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--sync", "none"]).await;
    let (code, stderr) = refused(command(dir.path(), "127.0.0.1:0", &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(s.get("/readyz").await.0, 200, "the first process is unaffected");
    s.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_mode_and_startup_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = refused(command(dir.path(), "0.0.0.0:0", &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without API keys"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().filter(|l| l.starts_with("oms: error:")).count(), 1);

    let (code, stderr) = refused(command(dir.path(), "not-an-address", &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid listen address"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = refused(command(dir.path(), &addr, &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, stderr) = refused(command(&file.join("data"), "127.0.0.1:0", &[])).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not writable"), "{stderr}");

    // With keys, any address is allowed and every route but the probes needs one.
    let mut cmd = command(dir.path(), "0.0.0.0:0", &["--sync", "none"]);
    cmd.env("OMS_API_KEYS", "k-one, k-two");
    let mut child = cmd.spawn().unwrap();
    let (log, mut lines) = drain_stderr(&mut child);
    let port = tokio::time::timeout(PROCESS_WAIT, async {
        while let Some(line) = lines.recv().await {
            if let Some(rest) = line.split("listening on 0.0.0.0:").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("no listen line: {:?}", log.lock().unwrap());
    })
    .await
    .unwrap();
    let mut s = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        log,
        lines,
    };
    s.wait_ready().await;
    let url = format!("{}/v1/orders", s.base);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 401);
    let ok = s.client.get(&url).bearer_auth("k-two").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let logged = s.log.lock().unwrap().join("\n");
    assert!(
        !logged.contains("k-one") && !logged.contains("k-two"),
        "keys must never be logged"
    );
    s.kill().await;
}

#[tokio::test]
async fn help_is_available_for_every_command() {
    for args in [&["--help"][..], &["serve", "--help"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for flag in [
            "--listen",
            "--data-dir",
            "--sync",
            "--snapshot-every-records",
            "--snapshot-every-secs",
            "--log-format",
            "--stream-token-ttl-secs",
            "OMS_API_KEYS",
            "RUST_LOG",
            "OMS_STREAM_TOKEN_TTL_SECS",
        ] {
            assert!(text.contains(flag), "{args:?} lacks {flag}: {text}");
        }
    }
}

/// The quick start of docs/API.md, run as written (bash, curl, jq) against a server listening
/// on `localhost:0`, twice on the same data directory: both runs take the order to `delivered`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_runs_twice_on_one_data_directory() {
    let tools = ["bash", "curl", "jq"];
    if let Some(missing) = tools.iter().find(|t| {
        !std::process::Command::new("which")
            .arg(t)
            .output()
            .is_ok_and(|o| o.status.success())
    }) {
        println!("skipped: {missing} is not installed");
        return;
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    let section = doc
        .split("## Quick start with curl")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let script = section.split("```sh").nth(2).unwrap().split("```").next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(command(dir.path(), "localhost:0", &["--sync", "none"])).await;
    assert!(
        s.base.contains("127.0.0.1"),
        "localhost is served on its IPv4 address: {}",
        s.base
    );
    // The stream at the end never ends: it is left out.
    let script: String = script
        .lines()
        .filter(|l| !l.contains("/events"))
        .map(|l| l.replace("http://127.0.0.1:8080", &s.base))
        .collect::<Vec<_>>()
        .join("\n");
    for run in 1..=2 {
        let out = Command::new("bash").arg("-c").arg(&script).output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "run {run}: {text}");
        for status in ["\"confirmed\"", "\"shipped\"", "\"delivered\""] {
            assert!(text.contains(status), "run {run} lacks {status}: {text}");
        }
    }
    s.kill().await;
}
