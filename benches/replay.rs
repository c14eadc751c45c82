//! Replay rate, on its own: a log of counts, 3-line placements and cancellations written with
//! `SyncPolicy::None` (the set-up is not what is measured), then folded from the start the way
//! recovery folds it (`Engine::replay_state`: read, check, decode, apply).
//!
//! Run: `cargo bench --bench replay` (`OMS_BENCH_REPLAY_N` orders, default 300,000).
//! Results and method: docs/PERFORMANCE.md.

mod common;

use common::{SKUS, env_u64, open, place, runtime, setup, three_line_order};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::domain::order::NewOrder;
use oms::engine::OrderRequest;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let n = env_u64("OMS_BENCH_REPLAY_N", 300_000);
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let engine = rt.block_on(async {
        let e = open(dir.path(), wal::SyncPolicy::None).await;
        setup(&e, SKUS).await;
        let make: Arc<dyn Fn(u64) -> NewOrder + Send + Sync> = Arc::new(three_line_order);
        place(&e, n, make).await;
        // Every tenth order cancelled: an update record among the placements.
        for id in (1..=n).step_by(10) {
            let req = OrderRequest::Cancel { reason: "bench".into() };
            e.order_request(oms::domain::OrderId(id), req, None).await.unwrap();
        }
        e
    });
    let records = engine.stats().wal.map(|w| w.records_appended).unwrap_or(0);
    eprintln!("replaying {records} records ({n} orders)");
    let mut g = c.benchmark_group("replay");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(records.max(1)));
    g.bench_function("fold_whole_log", |b| {
        b.iter_with_large_drop(|| engine.replay_state().unwrap())
    });
    g.finish();
    rt.block_on(engine.shutdown()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
