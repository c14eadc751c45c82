//! The RabbitMQ relay's throughput with publisher confirms, and what running it costs
//! placements (relay off vs on, alternating in one run). Needs RabbitMQ on 127.0.0.1:5672
//! (guest/guest); without it, prints that it was skipped. A plain binary:
//!
//! ```text
//! cargo bench --bench relay
//! RELAY_BENCH_ORDERS=50000 RELAY_BENCH_PHASE_ORDERS=20000 RELAY_BENCH_SYNC=always cargo bench --bench relay
//! ```
//!
//! Part 1: 3-line orders are placed with the relay off (4 events each: `order.created` and
//! three `inventory.changed`), then the relay starts and publishes the backlog to a durable
//! topic exchange with one durable queue bound; events/s = confirmed messages / time until
//! its lag is 0. Part 2: placements/s (256 in flight) in alternating phases, relay off and
//! relay on (caught up before each phase, publishing live during it); medians.

mod common;

use common::{env_u64, open, place, runtime, setup, three_line_order};
use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use oms::engine::{Engine, SubscriberError};
use oms::relay::amqp::{self, AmqpConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const EXCHANGE: &str = "oms.bench";
const QUEUE: &str = "oms.bench.relay";
const PHASES: usize = 3;

fn main() {
    runtime().block_on(run());
}

async fn run() {
    let Ok(Ok(conn)) = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(URL, ConnectionProperties::default()),
    )
    .await
    else {
        println!("relay bench: skipped: RabbitMQ is not reachable at 127.0.0.1:5672");
        return;
    };
    let sync = match std::env::var("RELAY_BENCH_SYNC").as_deref() {
        Ok("always") => wal::SyncPolicy::Always,
        _ => wal::SyncPolicy::None,
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), sync).await;
    setup(&engine, common::SKUS).await;
    let ch = conn.create_channel().await.unwrap();
    let n = env_u64("RELAY_BENCH_ORDERS", 50_000);
    let make = Arc::new(three_line_order);
    let placed = place(&engine, n, make.clone()).await;
    println!(
        "placed {n} orders (relay off) in {:.2} s, sync {sync:?}",
        placed.as_secs_f64()
    );

    // The relay declares the exchange; the queue is bound once it exists.
    let (stop, rx) = watch::channel(false);
    bind_queue(&ch).await;
    let started = Instant::now();
    let status = amqp::start(engine.clone(), config(), rx);
    wait_caught_up(&engine).await;
    let secs = started.elapsed().as_secs_f64();
    let published = status.published_total();
    println!(
        "relay: {published} events (whole log) confirmed in {secs:.2} s = {:.0} events/s",
        published as f64 / secs
    );
    stop_relay(&engine, &stop).await;

    let phase = env_u64("RELAY_BENCH_PHASE_ORDERS", 20_000);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..PHASES {
        let t = place(&engine, phase, make.clone()).await;
        off.push(phase as f64 / t.as_secs_f64());
        let (stop, rx) = watch::channel(false);
        let status = amqp::start(engine.clone(), config(), rx);
        wait_caught_up(&engine).await;
        let before = status.published_total();
        let t = place(&engine, phase, make.clone()).await;
        wait_caught_up(&engine).await;
        on.push(phase as f64 / t.as_secs_f64());
        println!(
            "  phase: off {:.0}/s, on {:.0}/s ({} events relayed live)",
            off.last().unwrap(),
            on.last().unwrap(),
            status.published_total() - before
        );
        stop_relay(&engine, &stop).await;
    }
    let (off_m, on_m) = (median(&mut off), median(&mut on));
    println!(
        "placements/s, median of {PHASES}: relay off {off_m:.0}, relay on {on_m:.0}: cost {:.1} %",
        (1.0 - on_m / off_m) * 100.0
    );
    let _ = ch.queue_delete(QUEUE.into(), QueueDeleteOptions::default()).await;
    engine.shutdown().await.unwrap();
}

fn config() -> AmqpConfig {
    AmqpConfig {
        url: URL.into(),
        exchange: EXCHANGE.into(),
    }
}

async fn bind_queue(ch: &lapin::Channel) {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(QUEUE.into(), durable, FieldTable::default())
        .await
        .unwrap();
    ch.queue_purge(QUEUE.into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    // Declared as the relay declares it, so the queue can be bound before the relay runs.
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(EXCHANGE.into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind(
        QUEUE.into(),
        EXCHANGE.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

async fn wait_caught_up(engine: &Engine) {
    loop {
        let lag = engine
            .subscribers()
            .into_iter()
            .find(|s| s.name == amqp::SUBSCRIBER)
            .map(|s| s.lag_records);
        if lag == Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Stops the relay and waits until its subscriber is closed.
async fn stop_relay(engine: &Engine, stop: &watch::Sender<bool>) {
    stop.send_replace(true);
    loop {
        match engine.subscriber(amqp::SUBSCRIBER, 0).await {
            Ok(_) => return,
            Err(SubscriberError::InUse(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => panic!("{e}"),
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
