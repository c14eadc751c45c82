//! The PostgreSQL read model against the engine: after a whole lifecycle, after the projector
//! stops and resumes, after the engine restarts past a snapshot, after PostgreSQL was
//! unreachable, and after a rebuild, the tables equal the engine's state (orders, lines and
//! allocations, shipments, refunds, history counts, every pair), with no duplicated history
//! row. Skipped with a note without PostgreSQL (fails with `OMS_REQUIRE_POSTGRES=1`).

use crate::pg::{TestDb, client};
use crate::support::*;
use crate::tables;
use oms::domain::EngineState;
use oms::domain::order::LineQty;
use oms::engine::{Engine, OrderRequest};
use oms::read_model::{ReadModelConfig, ReadModelStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running projector and what stops it.
struct Projector {
    status: Arc<ReadModelStatus>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Projector {
    fn start(engine: &Engine, url: &str) -> Projector {
        let status = Arc::new(ReadModelStatus::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut config = ReadModelConfig::new(url);
        config.retry_first_ms = 10;
        config.retry_max_ms = 50;
        let task = oms::read_model::spawn(engine.clone(), config, status.clone(), stopped);
        Projector { status, stop, task }
    }

    /// Waits (with a deadline) until every published record is committed.
    async fn caught_up(&self, engine: &Engine) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.status.position() < engine.published_lsn() {
            assert!(
                Instant::now() < deadline,
                "projector stuck at {} of {}: {:?}",
                self.status.position(),
                engine.published_lsn(),
                self.status.figures(engine.published_lsn())
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        self.task.await.unwrap();
    }
}

fn expected_orders(state: &EngineState) -> Vec<String> {
    let mut out: Vec<String> = state
        .orders
        .values()
        .map(|o| {
            let amounts = [
                o.subtotal_amount,
                o.total_amount,
                o.payment.captured,
                o.payment.refunded,
            ];
            tables::order_line(&o.id.to_string(), o.status.as_str(), amounts, o.history.len())
        })
        .collect();
    out.sort();
    out
}

fn expected_items(state: &EngineState) -> Vec<String> {
    let mut out = Vec::new();
    for o in state.orders.values() {
        for (i, item) in o.items.iter().enumerate() {
            let allocs: Vec<String> = item
                .allocations
                .iter()
                .map(|a| format!("{}:{}", a.warehouse_id, a.quantity))
                .collect();
            out.push(format!(
                "{} {} {} {} [{}]",
                o.id,
                i + 1,
                item.sku,
                item.quantity,
                allocs.join(" ")
            ));
        }
    }
    out.sort();
    out
}

fn expected_shipments(state: &EngineState) -> Vec<String> {
    let mut out = Vec::new();
    for o in state.orders.values() {
        for (i, s) in o.shipments.iter().enumerate() {
            let items: Vec<String> = s.items.iter().map(|l| format!("{}:{}", l.sku, l.quantity)).collect();
            let (id, st) = (o.shipment_id(i), s.status.as_str());
            out.push(format!("{id} {} {} {st} [{}]", o.id, s.warehouse_id, items.join(" ")));
        }
    }
    out.sort();
    out
}

fn expected_refunds(state: &EngineState) -> Vec<String> {
    let mut out = Vec::new();
    for o in state.orders.values() {
        for (i, r) in o.refunds.iter().enumerate() {
            let amount = r.amount.normalize();
            out.push(format!("{} {} {amount} {}", o.refund_id(i), o.id, r.status.as_str()));
        }
    }
    out.sort();
    out
}

fn expected_inventory(state: &EngineState) -> Vec<String> {
    let mut out: Vec<String> = state
        .inventory
        .iter()
        .filter(|(_, i)| i.on_hand() != 0 || i.reserved() != 0)
        .map(|((sku, wh), i)| {
            tables::inventory_line(
                sku.as_str(),
                wh.as_str(),
                i.on_hand(),
                i.reserved(),
                i.on_hand() - i.reserved(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The tables equal what the engine's actors hold, and nothing is duplicated.
async fn assert_tables_equal_engine(url: &str, engine: &Engine) {
    let db = client(url).await;
    let state = engine.export_state().await.unwrap();
    assert_eq!(tables::orders(&db).await, expected_orders(&state));
    assert_eq!(tables::items(&db).await, expected_items(&state));
    assert_eq!(tables::shipments(&db).await, expected_shipments(&state));
    assert_eq!(tables::refunds(&db).await, expected_refunds(&state));
    assert_eq!(tables::inventory(&db).await, expected_inventory(&state));
    assert_eq!(tables::duplicated_history(&db).await, 0);
    assert_eq!(tables::position(&db).await, Some(engine.published_lsn()));
}

/// Every kind of event: a split placement, payment, fulfilment, shipping, delivery, a
/// return received and restocked, a partial and a full refund; a declined payment and a
/// cancelled order; an unpaid order still holding stock.
async fn lifecycle(h: &Harness) {
    h.warehouse("east", 40.7, -74.0, 1).await;
    h.warehouse("west", 34.0, -118.2, 2).await;
    h.stock("tee", "east", 2).await;
    h.stock("tee", "west", 5).await;
    h.stock("mug", "west", 3).await;
    h.place(new_order("u1", &[("tee", 4, "10.00"), ("mug", 1, "5.25")]))
        .await;
    let split = h.place(new_order("u2", &[("tee", 3, "10.00")])).await;
    let id = split.id;
    h.pay(id, "tok_visa").await.unwrap();
    let f = h.engine.order_request(id, OrderRequest::Fulfill, None).await.unwrap();
    for i in 0..f.order.shipments.len() {
        let shipment_id = f.order.shipment_id(i);
        let ship = OrderRequest::Ship {
            shipment_id: shipment_id.clone(),
            carrier: Some("ups".into()),
            tracking_number: Some(format!("1Z{i}")),
        };
        h.engine.order_request(id, ship, None).await.unwrap();
        let deliver = OrderRequest::Deliver { shipment_id };
        h.engine.order_request(id, deliver, None).await.unwrap();
    }
    let items = vec![LineQty {
        sku: key("tee"),
        quantity: 2,
    }];
    let ret = OrderRequest::RequestReturn {
        items,
        reason: "too big".into(),
    };
    let rid = h.engine.order_request(id, ret, None).await.unwrap().created.unwrap();
    let approve = OrderRequest::ApproveReturn { return_id: rid.clone() };
    h.engine.order_request(id, approve, None).await.unwrap();
    let receive = OrderRequest::ReceiveReturn {
        return_id: rid.clone(),
        warehouse_id: key("east"),
        restock: true,
    };
    h.engine.order_request(id, receive, None).await.unwrap();
    let part = OrderRequest::Refund {
        amount: money("20.00"),
        return_id: Some(rid),
        reason: "returned".into(),
    };
    h.engine.order_request(id, part, None).await.unwrap();
    let rest = OrderRequest::Refund {
        amount: split.total_amount - money("20.00"),
        return_id: None,
        reason: "goodwill".into(),
    };
    h.engine.order_request(id, rest, None).await.unwrap();
    let declined = h.place(new_order("u3", &[("mug", 1, "5.25")])).await;
    let _declined = h.pay(declined.id, "tok_chargeDeclined").await;
    let cancelled = h.place(new_order("u4", &[("mug", 1, "5.25")])).await;
    let cancel = OrderRequest::Cancel {
        reason: "changed mind".into(),
    };
    h.engine.order_request(cancelled.id, cancel, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_equal_the_engine_after_a_whole_lifecycle_and_resume_exactly_once() {
    let Some(db) = TestDb::create("read_model::lifecycle").await else {
        return;
    };
    let h = Harness::new().await;
    let p = Projector::start(&h.engine, &db.url);
    lifecycle(&h).await;
    p.caught_up(&h.engine).await;
    assert_tables_equal_engine(&db.url, &h.engine).await;
    // Its log subscriber pins the log from what PostgreSQL holds (acknowledged after commit).
    let pin = |e: &Engine| {
        e.subscribers()
            .into_iter()
            .find(|s| s.name == "read-model")
            .map(|s| s.acked_lsn)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while pin(&h.engine) != Some(h.engine.published_lsn()) {
        assert!(Instant::now() < deadline, "subscriber at {:?}", pin(&h.engine));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Stopped while the engine goes on: it resumes from its stored position.
    p.stop().await;
    h.place(new_order("u5", &[("mug", 1, "5.25")])).await;
    let p = Projector::start(&h.engine, &db.url);
    p.caught_up(&h.engine).await;
    assert_tables_equal_engine(&db.url, &h.engine).await;
    p.stop().await;

    // Behind a snapshot after a restart (the log before it may be gone): it upserts the
    // snapshot's state, then follows the log; nothing is duplicated.
    let order = h.place(new_order("u6", &[("tee", 1, "10.00")])).await;
    h.pay(order.id, "tok_visa").await.unwrap();
    let e = h.engine.clone();
    tokio::task::spawn_blocking(move || e.snapshot_now())
        .await
        .unwrap()
        .unwrap();
    let h = h.restart().await;
    h.engine
        .order_request(order.id, OrderRequest::Fulfill, None)
        .await
        .unwrap();
    let p = Projector::start(&h.engine, &db.url);
    p.caught_up(&h.engine).await;
    assert_tables_equal_engine(&db.url, &h.engine).await;
    p.stop().await;

    // A rebuild writes the same tables from scratch.
    let position = oms::read_model::rebuild::rebuild(&h.engine, &db.url).await.unwrap();
    assert_eq!(position, h.engine.published_lsn());
    assert_tables_equal_engine(&db.url, &h.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_serves_while_postgres_is_unreachable_and_the_projector_catches_up() {
    let Some(db) = TestDb::create("read_model::unreachable").await else {
        return;
    };
    let h = Harness::new().await;
    // A database that does not exist yet: every connection fails.
    let missing = format!("{}_later", db.name);
    let url = db.url.replace(&db.name, &missing);
    let p = Projector::start(&h.engine, &url);
    lifecycle(&h).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.status.figures(0).errors_total < 2 {
        assert!(Instant::now() < deadline, "the projector never retried");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(p.status.position(), 0);
    assert!(p.status.figures(h.engine.published_lsn()).lag_records > 0);
    let admin = client(&db.url).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {missing}"))
        .await
        .unwrap();
    let later = TestDb { name: missing, url };
    p.caught_up(&h.engine).await;
    assert_tables_equal_engine(&later.url, &h.engine).await;
    assert_eq!(p.status.figures(h.engine.published_lsn()).lag_records, 0);
    p.stop().await;
    drop(admin);
}
