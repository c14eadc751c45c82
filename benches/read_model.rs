//! The read model's projector: how many log records per second it writes into PostgreSQL,
//! against the rate the engine makes them. Not a criterion bench (each run needs a fresh
//! database and a log of its own): it prints the figures.
//!
//! 1. Backlog: the engine places `OMS_BENCH_N` one-line orders (default 100,000; the flash
//!    sale's record, spread over 1,000 SKUs), with no projector; then a projector on a fresh
//!    database catches up from record 0, three times (three databases): records/s, median.
//! 2. Live: a projector follows while the engine places another N orders as fast as it can:
//!    the engine's rate, the largest lag seen, and how long the projector needs after the load.
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres); skipped without.
//! Run: `cargo bench --bench read_model`. Results: docs/PERFORMANCE.md.

mod common;

use common::{env_u64, key, open, order, place, runtime, setup};
use oms::engine::Engine;
use oms::read_model::{ReadModelConfig, ReadModelStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const SKUS_USED: u64 = 1_000;

async fn fresh_db(admin: &tokio_postgres::Client, n: usize) -> (String, String) {
    let name = format!("oms_bench_{}_{n}", std::process::id());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    (name.clone(), format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

struct Running {
    status: Arc<ReadModelStatus>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(engine: &Engine, url: &str) -> Running {
    let status = Arc::new(ReadModelStatus::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = oms::read_model::spawn(engine.clone(), ReadModelConfig::new(url), status.clone(), stopped);
    Running { status, stop, task }
}

async fn until_caught_up(engine: &Engine, r: &Running) {
    while r.status.position() < engine.published_lsn() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn stop(r: Running) {
    r.stop.send_replace(true);
    r.task.await.unwrap();
}

fn make() -> Arc<dyn Fn(u64) -> oms::domain::order::NewOrder + Send + Sync> {
    Arc::new(|i| order(vec![(key(&format!("sku{}", i % SKUS_USED)), 1)]))
}

fn main() {
    let rt = runtime();
    rt.block_on(async {
        let admin = match tokio_postgres::connect(ADMIN_URL, NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(conn);
                c
            }
            Err(e) => {
                println!("read_model bench: skipped: PostgreSQL unreachable ({e})");
                return;
            }
        };
        let n = env_u64("OMS_BENCH_N", 100_000);
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), wal::SyncPolicy::None).await;
        setup(&engine, SKUS_USED).await;
        let took = place(&engine, n, make()).await;
        let records = engine.published_lsn();
        println!(
            "engine: {n} placements in {:.2} s = {:.0} placements/s ({records} records in the log)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );
        let mut rates = Vec::new();
        let mut dbs = Vec::new();
        for run in 0..3 {
            let (name, url) = fresh_db(&admin, run).await;
            let started = Instant::now();
            let r = start(&engine, &url);
            until_caught_up(&engine, &r).await;
            let secs = started.elapsed().as_secs_f64();
            let f = r.status.figures(records);
            println!(
                "backlog run {run}: {records} records in {secs:.2} s = {:.0} records/s ({} transactions)",
                records as f64 / secs,
                f.batches_total
            );
            rates.push(records as f64 / secs);
            stop(r).await;
            dbs.push(name);
        }
        rates.sort_by(f64::total_cmp);
        println!("backlog: median {:.0} records/s", rates[1]);

        // Live: follow while the engine places as fast as it can (the last database).
        let (name, url) = fresh_db(&admin, 9).await;
        dbs.push(name);
        let r = start(&engine, &url);
        until_caught_up(&engine, &r).await;
        let before = engine.published_lsn();
        let took = place(&engine, n, make()).await;
        let lag_at_end = engine.published_lsn() - r.status.position();
        let after = Instant::now();
        until_caught_up(&engine, &r).await;
        let drain = after.elapsed().as_secs_f64();
        let made = engine.published_lsn() - before;
        println!(
            "live: engine {:.0} records/s while projected; lag at the load's end {lag_at_end} records, drained in {drain:.2} s; projector {:.0} records/s over the whole run",
            made as f64 / took.as_secs_f64(),
            made as f64 / (took.as_secs_f64() + drain)
        );
        stop(r).await;
        engine.shutdown().await.unwrap();
        for name in dbs {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
        }
    });
}
