//! Engine benchmarks through the async handle, with `SyncPolicy::Always` on the real disk:
//! hot-SKU placement (one line, one SKU, many concurrent buyers), 3-line placement over
//! 10,000 SKUs x 4 warehouses. Replay has its own bench (`benches/replay.rs`).
//!
//! Run: `cargo bench --bench engine`. Results and method: docs/PERFORMANCE.md.

mod common;

use common::{SKUS, key, open, order, place, runtime, setup, three_line_order};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::domain::order::NewOrder;
use std::sync::Arc;
use std::time::Duration;

/// The binary's allocator, so the figures are the ones the server gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let rt = runtime();
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
        let make: Arc<dyn Fn(u64) -> NewOrder + Send + Sync> = Arc::new(three_line_order);
        b.iter_custom(|iters| rt.block_on(place(&engine, iters, make.clone())));
    });
    g.finish();
    let stats = engine.stats();
    if let Some(w) = stats.wal {
        eprintln!("wal after placements: {w:?}");
    }

    rt.block_on(engine.shutdown()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
