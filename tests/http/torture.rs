//! kill -9 torture of the real binary: clients drive orders through their whole lifecycle
//! (place, pay with the gateway's fault tokens, cancel, fulfil, ship, deliver, return, receive
//! with or without restock, refund) and adjust stock, every request with an `Idempotency-Key`;
//! the process is killed with SIGKILL at a random instant and started again on the same data
//! directory. After every restart, through the API:
//! - every acknowledged (2xx) request sent again with its key replays the same status and body
//!   (its change survived with its response);
//! - every pair's reserved units are exactly the allocated, unshipped units of the orders that
//!   hold stock (payment pending, confirmed, processing, partially shipped), and on_hand >=
//!   reserved;
//! - money per order: captured <= total, refunded <= captured, a settled cancelled order keeps
//!   nothing it captured.
//!
//! CI kills `KILLS_DEFAULT` times; `OMS_TORTURE_KILLS=N` kills N times, `OMS_TORTURE_SEED=S`
//! changes the clients' choices (the kill instants follow the machine's timing). The figures
//! of a long run are in docs/FAULTS.md.

use crate::process::{Server, wait_exit};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KILLS_DEFAULT: u64 = 10;
/// A long run prints its figures after every this many kills.
const PROGRESS_EVERY: u64 = 25;
const CLIENTS: usize = 4;
const SKUS: [&str; 3] = ["tee", "mug", "cap"];
const WAREHOUSES: [&str; 2] = ["paris", "lyon"];
/// Statuses whose orders hold stock.
const HOLDING: [&str; 4] = ["payment_pending", "confirmed", "processing", "partially_shipped"];
/// Longest a round of load runs before its kill.
const ROUND_MS_MAX: u64 = 1_500;
/// Longest wait for the restarted server to settle what a kill left pending.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// A request as sent, so it can be sent again with its key.
#[derive(Clone, Debug)]
struct Req {
    key: String,
    method: reqwest::Method,
    path: String,
    body: Value,
}

#[derive(Clone, Debug)]
struct Acked {
    req: Req,
    status: u16,
    bytes: Vec<u8>,
}

/// What the clients learned, across rounds.
#[derive(Default)]
struct Book {
    acked: Vec<Acked>,
    /// Acknowledged since the last check.
    fresh: usize,
    /// Requests whose outcome the client never learned (5xx, connection cut by the kill).
    unknown: Vec<Req>,
    /// Each client's orders still in play.
    orders: Vec<Vec<String>>,
    requests: u64,
}

#[derive(Clone)]
struct Client {
    base: String,
    http: reqwest::Client,
    book: Arc<Mutex<Book>>,
    acks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Client {
    /// Sends `req`; `None` if no answer came (the process died).
    async fn send(&self, req: &Req) -> Option<(u16, Vec<u8>, bool)> {
        let mut r = self
            .http
            .request(req.method.clone(), format!("{}{}", self.base, req.path))
            .header("idempotency-key", &req.key);
        if req.method != reqwest::Method::GET {
            r = r.json(&req.body);
        }
        let resp = r.send().await.ok()?;
        let status = resp.status().as_u16();
        let replayed = resp.headers().contains_key("idempotent-replayed");
        let bytes = resp.bytes().await.ok()?.to_vec();
        Some((status, bytes, replayed))
    }

    /// Sends a mutation and books its answer; returns the body of a 2xx.
    async fn mutate(&self, req: Req) -> Option<Value> {
        let answer = self.send(&req).await;
        let mut book = self.book.lock().unwrap();
        book.requests += 1;
        match answer {
            Some((status, bytes, _)) if (200..300).contains(&status) => {
                let body = serde_json::from_slice(&bytes).ok();
                book.acked.push(Acked { req, status, bytes });
                book.fresh += 1;
                drop(book);
                self.acks.fetch_add(1, Ordering::Relaxed);
                body
            }
            Some((status, _, _)) if status < 500 => None,
            _ => {
                book.unknown.push(req);
                None
            }
        }
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.ok()?;
        if resp.status() != 200 {
            return None;
        }
        resp.json().await.ok()
    }
}

fn amount(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or("0")).unwrap_or_default()
}

/// One client: until stopped, takes one of its orders a step further, places a new one,
/// restocks, or retries a request whose outcome it never learned.
async fn client_loop(c: Client, idx: usize, mut rng: Rng, round: u64) {
    let mut n = 0u64;
    while !c.stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("c{idx}-r{round}-{n}");
        let mine: Vec<String> = c.book.lock().unwrap().orders[idx].clone();
        let roll = rng.below(100);
        if roll < 8 {
            let retry = {
                let mut book = c.book.lock().unwrap();
                let k = book.unknown.len();
                (k > 0).then(|| book.unknown.swap_remove(rng.below(k as u64) as usize))
            };
            if let Some(req) = retry {
                c.mutate(req).await;
                continue;
            }
        }
        if roll < 16 {
            let sku = SKUS[rng.below(3) as usize];
            let wh = WAREHOUSES[rng.below(2) as usize];
            let delta = rng.below(8) as i64 - 1;
            let body = json!({"sku": sku, "warehouse_id": wh, "delta": delta, "reason": "torture"});
            let req = Req {
                key,
                method: reqwest::Method::POST,
                path: "/v1/inventory/adjustments".into(),
                body,
            };
            c.mutate(req).await;
            continue;
        }
        if roll < 40 || mine.is_empty() {
            place(&c, idx, &mut rng, key).await;
            continue;
        }
        let id = mine[rng.below(mine.len() as u64) as usize].clone();
        let Some(order) = c.get(&format!("/v1/orders/{id}")).await else {
            continue;
        };
        match next_step(&order, &mut rng) {
            Some((path, body)) => {
                let path = format!("/v1/orders/{id}{path}");
                c.mutate(Req {
                    key,
                    method: reqwest::Method::POST,
                    path,
                    body,
                })
                .await;
            }
            None => c.book.lock().unwrap().orders[idx].retain(|o| *o != id),
        }
    }
}

async fn place(c: &Client, idx: usize, rng: &mut Rng, key: String) {
    let lines = 1 + rng.below(2);
    let items: Vec<Value> = (0..lines)
        .map(|_| json!({"sku": SKUS[rng.below(3) as usize], "quantity": 1 + rng.below(3), "unit_price": "2.50"}))
        .collect();
    let body = json!({
        "user_id": format!("client-{idx}"),
        "currency": "EUR",
        "items": items,
        // No expiry during the run: the clock is the machine's, and the checks must not race it.
        "reservation_ttl_seconds": 7 * 24 * 3600,
        "shipping_address": {"line1": "1 Rue", "city": "Paris", "country": "FR", "lat": 48.9, "lon": 2.35},
    });
    let req = Req {
        key,
        method: reqwest::Method::POST,
        path: "/v1/orders".into(),
        body,
    };
    if let Some(o) = c.mutate(req).await {
        let id = o["id"].as_str().unwrap().to_string();
        c.book.lock().unwrap().orders[idx].push(id);
    }
}

/// The next lifecycle request for `o` (path under the order, body), or `None` when the order
/// is done with.
fn next_step(o: &Value, rng: &mut Rng) -> Option<(String, Value)> {
    let first = |list: &str, status: &str| {
        o[list]
            .as_array()?
            .iter()
            .find(|x| x["status"] == status)
            .map(|x| x["id"].as_str().unwrap().to_string())
    };
    let left = amount(&o["payment"]["captured_amount"]) - amount(&o["payment"]["refunded_amount"]);
    let refund = |rng: &mut Rng| {
        let part = if rng.percent(50) {
            left
        } else {
            (left / Decimal::from(3)).round_dp(2)
        };
        (part > Decimal::ZERO).then(|| {
            (
                "/refunds".to_string(),
                json!({"amount": part.to_string(), "reason": "torture"}),
            )
        })
    };
    let cancel = || Some(("/cancel".to_string(), json!({"reason": "torture"})));
    match o["status"].as_str()? {
        "payment_pending" if rng.percent(15) => cancel(),
        "payment_pending" => {
            let token = match rng.below(100) {
                0..60 => "tok_ok",
                60..70 => "tok_chargeDeclined",
                70..80 => "tok_captureAnswerLost",
                80..84 => "tok_authorizeTimeout",
                84..92 => "tok_refundAnswerLost",
                _ => "tok_refundDeclined",
            };
            Some(("/payments".into(), json!({"token": token})))
        }
        "confirmed" if rng.percent(15) => cancel(),
        "confirmed" => Some(("/fulfillments".into(), json!({}))),
        "processing" if rng.percent(10) => cancel(),
        "processing" | "partially_shipped" | "shipped" => {
            if let Some(s) = first("shipments", "shipped").filter(|_| rng.percent(50)) {
                return Some((format!("/shipments/{s}/deliver"), json!({})));
            }
            match first("shipments", "pending") {
                Some(s) => Some((format!("/shipments/{s}/ship"), json!({}))),
                None => first("shipments", "shipped").map(|s| (format!("/shipments/{s}/deliver"), json!({}))),
            }
        }
        "return_requested" => {
            let r = first("returns", "requested")?;
            if rng.percent(75) {
                Some((format!("/returns/{r}/approve"), json!({})))
            } else {
                Some((format!("/returns/{r}/reject"), json!({"reason": "torture"})))
            }
        }
        "return_approved" if first("returns", "approved").is_some() => {
            let r = first("returns", "approved")?;
            let wh = o["shipments"][0]["warehouse_id"].as_str()?.to_string();
            let restock = rng.percent(60);
            Some((
                format!("/returns/{r}/receive"),
                json!({"warehouse_id": wh, "restock": restock}),
            ))
        }
        "delivered" | "return_rejected" | "return_approved" | "partially_refunded" => match rng.below(5) {
            0 | 1 => {
                let sku = o["items"][0]["sku"].as_str()?.to_string();
                Some((
                    "/returns".into(),
                    json!({"items": [{"sku": sku, "quantity": 1}], "reason": "torture"}),
                ))
            }
            2 | 3 => refund(rng),
            _ => None,
        },
        _ => None,
    }
}

/// Everything acknowledged since the last check (and, with `all`, ever) replays with its key.
async fn check_acked(c: &Client, all: bool) -> u64 {
    let (acked, from) = {
        let mut book = c.book.lock().unwrap();
        let from = if all { 0 } else { book.acked.len() - book.fresh };
        book.fresh = 0;
        (book.acked[from..].to_vec(), from)
    };
    for (i, a) in acked.iter().enumerate() {
        let (status, bytes, replayed) = c.send(&a.req).await.expect("the restarted server answers");
        assert!(
            status == a.status && bytes == a.bytes && replayed,
            "acknowledged request #{} lost: {} {} (key {}) was {} {}, now {status} {} (replayed: {replayed})",
            from + i,
            a.req.method,
            a.req.path,
            a.req.key,
            a.status,
            String::from_utf8_lossy(&a.bytes),
            String::from_utf8_lossy(&bytes)
        );
    }
    acked.len() as u64
}

/// All orders of `status` (every page).
async fn orders_in(c: &Client, status: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cur) => format!("/v1/orders?status={status}&limit=500&cursor={cur}"),
            None => format!("/v1/orders?status={status}&limit=500"),
        };
        let page = c.get(&path).await.expect("orders list");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cur) => cursor = Some(cur.to_string()),
            None => return out,
        }
    }
}

fn pending(o: &Value) -> bool {
    o["payment"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["status"] == "pending")
        || o["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "pending")
}

/// Money of one order.
fn check_money(o: &Value) {
    let p = &o["payment"];
    let (total, captured, refunded) = (
        amount(&o["total_amount"]),
        amount(&p["captured_amount"]),
        amount(&p["refunded_amount"]),
    );
    assert!(captured <= total && refunded <= captured, "money of {}: {o}", o["id"]);
    if o["status"] == "cancelled" && !pending(o) {
        assert_eq!(refunded, captured, "cancelled with money kept: {o}");
    }
}

/// Stock agrees with the orders that hold it, and money with each order; read twice so that a
/// settlement finishing meanwhile does not make a false alarm.
async fn check_stock_and_money(c: &Client, touched: &[String]) {
    let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
    loop {
        let mut holding = Vec::new();
        for s in HOLDING {
            holding.extend(orders_in(c, s).await);
        }
        let mut pairs: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for sku in SKUS {
            let Some(inv) = c.get(&format!("/v1/inventory/{sku}")).await else {
                continue;
            };
            for w in inv["warehouses"].as_array().unwrap() {
                let k = (sku.to_string(), w["warehouse_id"].as_str().unwrap().to_string());
                pairs.insert(k, (w["on_hand"].as_u64().unwrap(), w["reserved"].as_u64().unwrap()));
            }
        }
        let mut again = Vec::new();
        for s in HOLDING {
            again.extend(orders_in(c, s).await);
        }
        let unsettled = holding.iter().any(pending);
        if holding != again || unsettled {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the restarted server did not settle: {holding:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let mut expect: HashMap<(String, String), u64> = HashMap::new();
        for o in &holding {
            for item in o["items"].as_array().unwrap() {
                for a in item["allocations"].as_array().unwrap() {
                    let k = (
                        item["sku"].as_str().unwrap().to_string(),
                        a["warehouse_id"].as_str().unwrap().to_string(),
                    );
                    *expect.entry(k).or_default() += a["quantity"].as_u64().unwrap();
                }
            }
            for sh in o["shipments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] != "pending")
            {
                for l in sh["items"].as_array().unwrap() {
                    let k = (
                        l["sku"].as_str().unwrap().to_string(),
                        sh["warehouse_id"].as_str().unwrap().to_string(),
                    );
                    *expect.get_mut(&k).expect("shipped from an allocation") -= l["quantity"].as_u64().unwrap();
                }
            }
        }
        for (k, (on_hand, reserved)) in &pairs {
            let want = expect.remove(k).unwrap_or(0);
            assert!(
                on_hand >= reserved,
                "{k:?} oversold: on_hand {on_hand}, reserved {reserved}"
            );
            assert_eq!(*reserved, want, "{k:?}: reserved {reserved}, orders hold {want}");
        }
        assert!(
            expect.values().all(|q| *q == 0),
            "orders hold stock of unknown pairs: {expect:?}"
        );
        break;
    }
    for id in touched {
        if let Some(o) = c.get(&format!("/v1/orders/{id}")).await {
            check_money(&o);
        }
    }
}

/// The run's figures, for docs/FAULTS.md.
fn report(book: &Book, kills: u64, checked: u64, took: Duration) {
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &book.acked {
        *kinds.entry(a.req.path.rsplit('/').next().unwrap_or("")).or_default() += 1;
    }
    kinds.retain(|k, _| !k.starts_with("ORD-"));
    eprintln!(
        "torture: {kills} kills in {:.0} s; {} requests, {} acknowledged {kinds:?}, {checked} replays checked, \
         0 lost, 0 violations",
        took.as_secs_f64(),
        book.requests,
        book.acked.len(),
    );
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_a_full_lifecycle_load_loses_nothing_acknowledged() {
    let kills = env("OMS_TORTURE_KILLS", KILLS_DEFAULT);
    let seed = env("OMS_TORTURE_SEED", 9);
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // Snapshots every 100 records: several per incarnation, so kills also land during them.
    let args = ["--snapshot-every-records", "100"];
    let book = Arc::new(Mutex::new(Book {
        orders: vec![Vec::new(); CLIENTS],
        ..Default::default()
    }));
    let mut rng = Rng(seed);
    let mut checked = 0u64;
    let mut server = Server::start(dir.path(), &args).await;
    for w in WAREHOUSES {
        let r = server.client.put(format!("{}/v1/warehouses/{w}", server.base));
        let r = r
            .json(&json!({"name": w, "country": "FR", "lat": 48.8, "lon": 2.3}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        for sku in SKUS {
            let body = json!({"sku": sku, "warehouse_id": w, "delta": 40});
            let r = server
                .client
                .post(format!("{}/v1/inventory/adjustments", server.base))
                .json(&body);
            assert_eq!(r.send().await.unwrap().status(), 200);
        }
    }
    for round in 0..kills {
        let acks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let c = Client {
            base: server.base.clone(),
            http,
            book: book.clone(),
            acks: acks.clone(),
            stop: stop.clone(),
        };
        let workers: Vec<_> = (0..CLIENTS)
            .map(|i| tokio::spawn(client_loop(c.clone(), i, Rng(seed ^ (round << 8) ^ i as u64), round)))
            .collect();
        // A random instant: after a random number of acknowledgements or a random time.
        let want_acks = 1 + rng.below(40);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50 + rng.below(ROUND_MS_MAX));
        while acks.load(Ordering::Relaxed) < want_acks && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let pid = server.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap()
                .success()
        );
        wait_exit(&mut server.child).await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        server = Server::start(dir.path(), &args).await;
        let c = Client {
            base: server.base.clone(),
            ..c
        };
        let all = round + 1 == kills || round % 100 == 99;
        checked += check_acked(&c, all).await;
        let touched: Vec<String> = book.lock().unwrap().orders.concat();
        check_stock_and_money(&c, &touched).await;
        if (round + 1) % PROGRESS_EVERY == 0 {
            report(&book.lock().unwrap(), round + 1, checked, started.elapsed());
        }
    }
    report(&book.lock().unwrap(), kills, checked, started.elapsed());
    server.kill().await;
}
