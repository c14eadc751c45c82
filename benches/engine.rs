//! Engine benchmarks through the async handle, with `SyncPolicy::Always` on the real disk:
//! hot-SKU placement (one line, one SKU, many concurrent buyers), 3-line placement over
//! 10,000 SKUs x 4 warehouses, and replay of the resulting log.
//!
//! Run: `cargo bench --bench engine`. Results and method: docs/PERFORMANCE.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::domain::money::Currency;
use oms::domain::order::{Address, NewLine, NewOrder, RESERVATION_TTL_MS_DEFAULT};
use oms::domain::{Key, Millis};
use oms::engine::{Engine, EngineConfig, ManualClock, SimulatedGateway, WarehouseInput};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The binary's allocator, so the figures are the ones the server gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent placements in flight (HTTP clients in a real deployment).
const IN_FLIGHT: usize = 256;
const SKUS: u64 = 10_000;
const WAREHOUSES: usize = 4;

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

fn order(lines: Vec<(Key, u64)>) -> NewOrder {
    NewOrder {
        user_id: key("bench"),
        currency: Currency::parse("USD").unwrap(),
        lines: lines
            .into_iter()
            .map(|(sku, quantity)| NewLine {
                sku,
                quantity,
                unit_price: Decimal::new(999, 2),
                discount: Decimal::ZERO,
            })
            .collect(),
        tax_amount: Decimal::ZERO,
        shipping_amount: Decimal::ZERO,
        discount_amount: Decimal::ZERO,
        shipping_address: Address {
            line1: "1 Main St".into(),
            city: "Springfield".into(),
            country: "US".into(),
            ..Default::default()
        },
        billing_address: None,
        reservation_ttl_ms: RESERVATION_TTL_MS_DEFAULT,
    }
}

async fn open(dir: &std::path::Path, sync: wal::SyncPolicy) -> Engine {
    let config = EngineConfig {
        data_dir: dir.to_path_buf(),
        wal: wal::WalConfig {
            sync,
            ..Default::default()
        },
        snapshot_every_records: u64::MAX,
        snapshot_every_ms: u64::MAX,
        ..Default::default()
    };
    let clock = Arc::new(ManualClock::new(Millis(1_780_000_000_000)));
    Engine::open(config, clock, Arc::new(SimulatedGateway::default()))
        .await
        .unwrap()
}

async fn setup(engine: &Engine, skus: u64) {
    for w in 0..WAREHOUSES {
        let input = WarehouseInput {
            id: key(&format!("wh{w}")),
            name: format!("wh{w}"),
            country: "US".into(),
            lat: Some(w as f64),
            lon: Some(0.0),
            priority: w as i64,
            carrier: None,
        };
        engine.upsert_warehouse(input, None).await.unwrap();
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (engine, next) = (engine.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= skus * WAREHOUSES as u64 {
                    break;
                }
                let (sku, w) = (i / WAREHOUSES as u64, i % WAREHOUSES as u64);
                engine
                    .set_inventory(key(&format!("sku{sku}")), key(&format!("wh{w}")), 1_000_000_000, None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Places `n` orders from `IN_FLIGHT` concurrent tasks; `make(i)` builds order i.
async fn place(engine: &Engine, n: u64, make: Arc<dyn Fn(u64) -> NewOrder + Send + Sync>) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let (engine, next, make) = (engine.clone(), next.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                engine.place_order(make(i), None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = rt.block_on(async {
        let e = open(dir.path(), wal::SyncPolicy::Always).await;
        setup(&e, SKUS).await;
        e
    });

    let mut g = c.benchmark_group("placement_always_sync");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(1));
    g.bench_function("hot_sku_1_line", |b| {
        let make: Arc<dyn Fn(u64) -> NewOrder + Send + Sync> = Arc::new(|_| order(vec![(key("sku0"), 1)]));
        b.iter_custom(|iters| rt.block_on(place(&engine, iters, make.clone())));
    });
    g.bench_function("3_lines_10k_skus_4_warehouses", |b| {
        let make: Arc<dyn Fn(u64) -> NewOrder + Send + Sync> = Arc::new(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let lines = (0..3)
                .map(|k| (key(&format!("sku{}", (h >> (k * 16)) % SKUS)), 1 + k))
                .collect();
            order(lines)
        });
        b.iter_custom(|iters| rt.block_on(place(&engine, iters, make.clone())));
    });
    g.finish();
    let stats = engine.stats();
    if let Some(w) = stats.wal {
        eprintln!("wal after placements: {w:?}");
    }

    // Replay of everything logged above (a few hundred thousand records).
    let records = engine.stats().wal.map(|w| w.records_appended).unwrap_or(0);
    let mut g = c.benchmark_group("replay");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(records.max(1)));
    g.bench_function("fold_whole_log", |b| {
        b.iter_with_large_drop(|| engine.replay_state().unwrap())
    });
    g.finish();
    rt.block_on(engine.shutdown()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
