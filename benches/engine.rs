//! Engine benchmarks through the async handle, with `SyncPolicy::Always` on the real disk:
//! hot-SKU placement (one line, one SKU, many concurrent buyers), 3-line placement over
//! 10,000 SKUs x 4 warehouses. Replay has its own bench (`benches/replay.rs`).
//!
//! Run: `cargo bench --bench engine`. Results and method: docs/PERFORMANCE.md.
//!
//! `OMS_BENCH_PLACE_N=N cargo bench --bench engine` instead places N orders of each workload
//! once (after the same set-up) and prints placements/s and the process's CPU time per
//! placement (user + system, from `/proc/self/stat`): steadier than throughput on a shared
//! machine, and a fixed amount of work for `perf stat` or `valgrind`.

mod common;

use common::{SKUS, key, open, order, place, runtime, setup, three_line_order};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use oms::domain::order::NewOrder;
use std::sync::Arc;
use std::time::Duration;

/// The binary's allocator, so the figures are the ones the server gets.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The process's CPU time (user + system) so far, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Places `n` orders of each workload once and prints rate and CPU per placement.
fn count_mode(n: u64) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let engine = rt.block_on(async {
        let e = open(dir.path(), wal::SyncPolicy::Always).await;
        setup(&e, SKUS).await;
        e
    });
    let hot: Arc<dyn Fn(u64) -> NewOrder + Send + Sync> = Arc::new(|_| order(vec![(key("sku0"), 1)]));
    let three: Arc<dyn Fn(u64) -> NewOrder + Send + Sync> = Arc::new(three_line_order);
    for (name, make) in [("hot_sku_1_line", hot), ("3_lines_10k_skus_4_warehouses", three)] {
        let cpu = cpu_seconds();
        let took = rt.block_on(place(&engine, n, make));
        let cpu = cpu_seconds() - cpu;
        println!(
            "{name}: {n} placements in {:.3} s = {:.0}/s, CPU {:.2} us per placement",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            cpu * 1e6 / n as f64
        );
    }
    if let Some(w) = engine.stats().wal {
        eprintln!("wal after placements: {w:?}");
    }
    rt.block_on(engine.shutdown()).unwrap();
}

fn bench(c: &mut Criterion) {
    let n = common::env_u64("OMS_BENCH_PLACE_N", 0);
    if n > 0 {
        return count_mode(n);
    }
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
