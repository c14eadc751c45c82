//! Resident memory per idle SKU-warehouse pair and per 3-line order, measured with N of each
//! (default 1,000,000; `OMS_BENCH_N` to change). Not a criterion bench: it prints bytes per
//! actor from the process's VmRSS before and after, once every actor has passivated.
//!
//! Run: `cargo bench --bench memory`. Results: docs/PERFORMANCE.md.

mod common;

use common::{env_u64, key, runtime};
use oms::domain::Millis;
use oms::domain::money::Currency;
use oms::domain::order::{Address, NewLine, NewOrder, RESERVATION_TTL_MS_DEFAULT};
use oms::engine::{Engine, EngineConfig, ManualClock, SimulatedGateway, WarehouseInput};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const IN_FLIGHT: usize = 256;

/// The binary's allocator (mimalloc), wrapped to count live heap bytes, so the figures can be given both as RSS (what the OS sees, including
/// freed memory the allocator keeps) and as live heap (what the engine actually holds).
#[global_allocator]
static HEAP: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

async fn run_parallel(n: u64, f: Arc<dyn Fn(u64) -> futures::future::BoxFuture<'static, ()> + Send + Sync>) {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (next, f) = (next.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                f(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn settle(engine: &Engine) {
    // Wait for every actor to passivate (a benchmark, not a test: polling is fine here).
    loop {
        let s = engine.stats();
        if s.pair_actors_active == 0 && s.order_actors_active == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn main() {
    let n = env_u64("OMS_BENCH_N", 1_000_000);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let config = EngineConfig {
            data_dir: dir.path().to_path_buf(),
            wal: wal::WalConfig {
                sync: wal::SyncPolicy::None,
                ..Default::default()
            },
            passivate_after_ms: 200,
            order_passivate_after_ms: 200,
            snapshot_every_records: u64::MAX,
            snapshot_every_ms: u64::MAX,
            ..Default::default()
        };
        let clock = Arc::new(ManualClock::new(Millis(1_780_000_000_000)));
        let engine = Engine::open(config, clock, Arc::new(SimulatedGateway::default()))
            .await
            .unwrap();
        for w in 0..4 {
            let input = WarehouseInput {
                id: key(&format!("wh{w}")),
                name: format!("wh{w}"),
                country: "US".into(),
                lat: None,
                lon: None,
                priority: w,
                carrier: None,
            };
            engine.upsert_warehouse(input, None).await.unwrap();
        }
        let base = rss_bytes();
        let heap_base = HEAP.allocated();
        let e = engine.clone();
        run_parallel(
            n,
            Arc::new(move |i| {
                let e = e.clone();
                Box::pin(async move {
                    let sku = key(&format!("sku-{:08}", i / 4));
                    e.set_inventory(sku, key(&format!("wh{}", i % 4)), 1_000_000, None)
                        .await
                        .unwrap();
                })
            }),
        )
        .await;
        settle(&engine).await;
        let after_pairs = rss_bytes();
        let per_pair = (after_pairs.saturating_sub(base)) as f64 / n as f64;
        let heap_pairs = HEAP.allocated();
        let heap_per_pair = heap_pairs.saturating_sub(heap_base) as f64 / n as f64;
        println!(
            "idle pairs: {n}, RSS +{} MiB = {per_pair:.0} B per pair; live heap {heap_per_pair:.0} B per pair",
            (after_pairs - base) >> 20
        );

        let e = engine.clone();
        let skus = n / 4;
        run_parallel(
            n,
            Arc::new(move |i| {
                let e = e.clone();
                Box::pin(async move {
                    let lines = (0..3u64)
                        .map(|k| NewLine {
                            sku: key(&format!("sku-{:08}", (i * 7 + k * 13) % skus)),
                            quantity: 1,
                            unit_price: Decimal::new(1999, 2),
                            discount: Decimal::ZERO,
                        })
                        .collect();
                    let order = NewOrder {
                        user_id: key(&format!("user-{}", i % 100_000)),
                        currency: Currency::parse("USD").unwrap(),
                        lines,
                        tax_amount: Decimal::ZERO,
                        shipping_amount: Decimal::new(499, 2),
                        discount_amount: Decimal::ZERO,
                        shipping_address: Address {
                            line1: "1 Main St".into(),
                            city: "Springfield".into(),
                            country: "US".into(),
                            postal_code: Some("12345".into()),
                            ..Default::default()
                        },
                        billing_address: None,
                        reservation_ttl_ms: RESERVATION_TTL_MS_DEFAULT,
                        extras: Default::default(),
                    };
                    e.place_order(order, None).await.unwrap();
                })
            }),
        )
        .await;
        settle(&engine).await;
        let after_orders = rss_bytes();
        let per_order = (after_orders.saturating_sub(after_pairs)) as f64 / n as f64;
        let heap_per_order = HEAP.allocated().saturating_sub(heap_pairs) as f64 / n as f64;
        println!(
            "3-line orders: {n}, RSS +{} MiB = {per_order:.0} B per order; live heap {heap_per_order:.0} B per order",
            (after_orders - after_pairs) >> 20
        );
        engine.shutdown().await.unwrap();
    });
}
