//! The PostgreSQL read model with the real binary: a mixed load (placements, payments,
//! fulfilment and shipping, cancellations, refunds) over HTTP, kill -9 in the middle of it,
//! a restart, more work; then the tables equal what the API reports for every order (status,
//! totals, lines and allocations, shipments, refunds, number of history rows) and every
//! pair, with no duplicated history row. Then `oms read-model rebuild` writes the same tables
//! from scratch, and `oms read-model forget` removes its log subscriber. Skipped with a note without PostgreSQL (fails with `OMS_REQUIRE_POSTGRES=1`).

use crate::pg::{TestDb, client};
use crate::process::{Server, wait_exit};
use crate::tables;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SKUS: [&str; 2] = ["tee", "mug"];

fn order(user: &str, sku: &str, quantity: u64) -> Value {
    json!({
        "user_id": user,
        "currency": "EUR",
        "items": [{"sku": sku, "quantity": quantity, "unit_price": "2.50"}],
        "tax_amount": "0.40",
        "shipping_address": {"line1": "1 Rue", "city": "Paris", "country": "FR", "lat": 48.9, "lon": 2.35},
    })
}

/// A POST that may fail (the server is killed under it): `None` then.
async fn post(s: &Server, path: &str, body: Value) -> Option<(u16, Value)> {
    let resp = s
        .client
        .post(format!("{}{path}", s.base))
        .json(&body)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.unwrap_or(Value::Null)))
}

/// The answer when it has the expected status, else `None` (and what failed, on stderr).
fn expect(answer: (u16, Value), want: &[u16], what: &str) -> Option<Value> {
    if want.contains(&answer.0) {
        return Some(answer.1);
    }
    eprintln!("{what}: {} {}", answer.0, answer.1);
    None
}

/// One order's worth of mixed work, what happens to it depending on `n`; `None` when a
/// request failed (the server was killed) or answered unexpectedly: the worker stops.
async fn work(s: &Server, user: &str, n: usize) -> Option<()> {
    let placed = post(s, "/v1/orders", order(user, SKUS[n % 2], 1 + (n % 3) as u64)).await?;
    if placed.0 == 409 {
        return Some(()); // sold out
    }
    let o = expect(placed, &[201], "place")?;
    let id = o["id"].as_str().unwrap().to_string();
    let path = |p: &str| format!("/v1/orders/{id}/{p}");
    match n % 5 {
        0 => return Some(()), // left pending, holding stock
        1 => {
            return expect(
                post(s, &path("cancel"), json!({"reason": "changed"})).await?,
                &[200],
                "cancel",
            )
            .map(drop);
        }
        _ => {}
    }
    let token = if n.is_multiple_of(7) {
        "tok_chargeDeclined"
    } else {
        "tok_visa"
    };
    let paid = expect(
        post(s, &path("payments"), json!({ "token": token })).await?,
        &[200, 402],
        "pay",
    )?;
    if paid["status"] != "confirmed" || n % 5 == 2 {
        return Some(());
    }
    if n % 5 == 3 {
        // Cancelled after payment: the captured money goes back as a refund.
        return expect(
            post(s, &path("cancel"), json!({"reason": "late"})).await?,
            &[200],
            "cancel",
        )
        .map(drop);
    }
    let f = expect(post(s, &path("fulfillments"), json!({})).await?, &[200], "fulfil")?;
    let shipment = f["shipments"][0]["id"].as_str().unwrap().to_string();
    let ship = json!({"tracking_number": format!("1Z{n}")});
    expect(
        post(s, &path(&format!("shipments/{shipment}/ship")), ship).await?,
        &[200],
        "ship",
    )?;
    if n % 10 != 4 {
        return Some(());
    }
    expect(
        post(s, &path(&format!("shipments/{shipment}/deliver")), json!({})).await?,
        &[200],
        "deliver",
    )?;
    let refund = json!({"amount": "1.00", "reason": "goodwill"});
    expect(post(s, &path("refunds"), refund).await?, &[201], "refund").map(drop)
}

/// `GET /metrics`'s value of `name`, if present.
async fn metric(s: &Server, name: &str) -> Option<f64> {
    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// Waits (with a deadline) until the projector is connected and has no lag.
async fn caught_up(s: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lag = metric(s, "oms_read_model_lag_records ").await;
        let connected = metric(s, "oms_read_model_connected ").await;
        if lag == Some(0.0) && connected == Some(1.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "read model lag {lag:?}, connected {connected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn money(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

/// What the API reports, as the lines `tables` reads from PostgreSQL.
struct Reported {
    orders: Vec<String>,
    items: Vec<String>,
    shipments: Vec<String>,
    refunds: Vec<String>,
    inventory: Vec<String>,
}

async fn every_order_id(s: &Server) -> Vec<String> {
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orders?limit=500&cursor={c}"),
            None => "/v1/orders?limit=500".to_string(),
        };
        let (_, page) = s.get(&path).await;
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

fn order_parts(o: &Value, r: &mut Reported) {
    let id = o["id"].as_str().unwrap();
    for (i, item) in o["items"].as_array().unwrap().iter().enumerate() {
        let allocs: Vec<String> = item["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}:{}", a["warehouse_id"].as_str().unwrap(), a["quantity"]))
            .collect();
        let (sku, q) = (item["sku"].as_str().unwrap(), &item["quantity"]);
        r.items.push(format!("{id} {} {sku} {q} [{}]", i + 1, allocs.join(" ")));
    }
    for sh in o["shipments"].as_array().unwrap() {
        let items: Vec<String> = sh["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| format!("{}:{}", l["sku"].as_str().unwrap(), l["quantity"]))
            .collect();
        let (sid, wh, st) = (
            sh["id"].as_str().unwrap(),
            sh["warehouse_id"].as_str().unwrap(),
            sh["status"].as_str().unwrap(),
        );
        r.shipments.push(format!("{sid} {id} {wh} {st} [{}]", items.join(" ")));
    }
    for rf in o["refunds"].as_array().unwrap() {
        let amount = money(&rf["amount"]).normalize();
        let (rid, st) = (rf["id"].as_str().unwrap(), rf["status"].as_str().unwrap());
        r.refunds.push(format!("{rid} {id} {amount} {st}"));
    }
}

async fn reported(s: &Server) -> Reported {
    let mut r = Reported {
        orders: vec![],
        items: vec![],
        shipments: vec![],
        refunds: vec![],
        inventory: vec![],
    };
    for id in every_order_id(s).await {
        let (st, o) = s.get(&format!("/v1/orders/{id}")).await;
        assert_eq!(st, 200);
        let (_, h) = s.get(&format!("/v1/orders/{id}/history")).await;
        let p = &o["payment"];
        let amounts = [
            money(&o["subtotal_amount"]),
            money(&o["total_amount"]),
            money(&p["captured_amount"]),
            money(&p["refunded_amount"]),
        ];
        let n_history = h["transitions"].as_array().unwrap().len();
        r.orders.push(tables::order_line(
            &id,
            o["status"].as_str().unwrap(),
            amounts,
            n_history,
        ));
        order_parts(&o, &mut r);
    }
    for sku in SKUS {
        let (_, inv) = s.get(&format!("/v1/inventory/{sku}")).await;
        for w in inv["warehouses"].as_array().unwrap() {
            let n = |k: &str| w[k].as_u64().unwrap();
            if n("on_hand") != 0 || n("reserved") != 0 {
                let wh = w["warehouse_id"].as_str().unwrap();
                r.inventory.push(tables::inventory_line(
                    sku,
                    wh,
                    n("on_hand"),
                    n("reserved"),
                    n("available"),
                ));
            }
        }
    }
    for v in [
        &mut r.orders,
        &mut r.items,
        &mut r.shipments,
        &mut r.refunds,
        &mut r.inventory,
    ] {
        v.sort();
    }
    r
}

async fn assert_tables_equal_api(url: &str, s: &Server) {
    let db = client(url).await;
    let r = reported(s).await;
    assert!(r.orders.len() > 10, "the load placed orders: {}", r.orders.len());
    assert_eq!(tables::orders(&db).await, r.orders);
    assert_eq!(tables::items(&db).await, r.items);
    assert_eq!(tables::shipments(&db).await, r.shipments);
    assert_eq!(tables::refunds(&db).await, r.refunds);
    assert_eq!(tables::inventory(&db).await, r.inventory);
    assert_eq!(tables::duplicated_history(&db).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_equal_the_api_after_kill_9_under_mixed_load_and_after_a_rebuild() {
    const WORKERS: usize = 6;
    const DONE_BEFORE_KILL: usize = 60;
    let Some(db) = TestDb::create("read_model::kill_9").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--postgres-url", db.url.as_str()];
    let s = Arc::new(Server::start(dir.path(), &flags).await);
    s.warehouse("paris", 48.8, 2.3).await;
    s.warehouse("lyon", 45.7, 4.8).await;
    for sku in SKUS {
        s.stock(sku, "paris", 150).await;
        s.stock(sku, "lyon", 150).await;
    }
    let (done, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (s, done, stop) = (s.clone(), done.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                if work(&s, &format!("w{w}"), n).await.is_none() {
                    break;
                }
                done.fetch_add(1, Ordering::Relaxed);
                n += WORKERS;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < DONE_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the load made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // kill -9 while the workers are still sending.
    let pid = s.child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let mut old = Arc::into_inner(s).expect("workers are done");
    wait_exit(&mut old.child).await;

    let s = Server::start(dir.path(), &flags).await;
    for n in 0..10 {
        work(&s, "after", n).await.expect("the restarted server works");
    }
    caught_up(&s).await;
    let (st, ready) = s.get("/readyz").await;
    assert_eq!(st, 200);
    assert_eq!(ready["read_model"]["lag_records"], 0, "{ready}");
    assert_eq!(ready["read_model"]["connected"], true, "{ready}");
    assert_tables_equal_api(&db.url, &s).await;
    s.kill().await;

    // A rebuild (server stopped) writes the same tables from the snapshot and the log.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(["read-model", "rebuild", "--data-dir"])
        .arg(dir.path())
        .args(["--postgres-url", &db.url])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Server::start(dir.path(), &flags).await;
    caught_up(&s).await;
    assert_tables_equal_api(&db.url, &s).await;
    s.kill().await;

    // Turned off for good: `forget` removes the subscriber and its pin on the log.
    let pin = dir.path().join("subscribers").join("read-model.pos");
    assert!(pin.exists(), "the projector's subscriber is registered");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(["read-model", "forget", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!pin.exists(), "the subscriber is forgotten");
}
