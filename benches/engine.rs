//! Engine benchmarks through the async handle, with `SyncPolicy::Always` on the real disk:
//! hot-SKU placement (one line, one SKU, many concurrent buyers), 3-line placement over
//! 10,000 SKUs x 4 warehouses, and replay of the resulting log.
//!
//! Run: `cargo bench --bench engine`. Results and method: docs/PERFORMANCE.md.

mod common;

use common::{SKUS, key, open, order, place, setup};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::domain::order::NewOrder;
use std::sync::Arc;
use std::time::Duration;

/// The binary's allocator, so the figures are the ones the server gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
