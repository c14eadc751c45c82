//! Criterion benchmarks of the write-ahead log: group-commit append throughput under
//! `SyncPolicy::Always` at 1, 16 and 256 producers, and replay throughput.
//!
//! Besides criterion's timings, each append benchmark prints what the log's own counters saw
//! over the whole run (records/s, MB/s, mean records per write, fsyncs/s).
//! Run: `CARGO_TARGET_DIR=/work/target-wal cargo bench -p wal --bench wal`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wal::{AppendTicket, SyncPolicy, Wal, WalConfig, WalStats};

/// Record sizes benchmarked, in bytes.
const RECORD_SIZES_BYTES: [usize; 2] = [128, 1024];
/// OS threads that drive the 256 logical producers.
const DRIVER_THREADS: usize = 4;
/// Appends each logical producer keeps in flight in the 256-producer case.
const IN_FLIGHT_PER_PRODUCER: usize = 8;
/// Records written before the replay benchmark.
const REPLAY_RECORDS: u64 = 1_000_000;

/// How one benchmark drives the log.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Logical producers.
    producers: usize,
    /// OS threads running them.
    threads: usize,
    /// Appends in flight per producer (1 = wait for each ack before the next append).
    in_flight: usize,
}

/// Runs `n_appends` appends spread over the shape's threads, each thread keeping
/// `producers / threads * in_flight` tickets outstanding.
fn drive(wal: &Wal, shape: Shape, record_bytes: usize, n_appends: u64) -> Duration {
    let per_thread = n_appends / shape.threads as u64;
    let remainder = n_appends % shape.threads as u64;
    let window = shape.producers / shape.threads * shape.in_flight;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for thread_idx in 0..shape.threads {
            let wal = wal.clone();
            let n = per_thread + u64::from((thread_idx as u64) < remainder);
            scope.spawn(move || {
                let mut in_flight: VecDeque<AppendTicket> = VecDeque::with_capacity(window);
                for _ in 0..n {
                    if in_flight.len() >= window {
                        in_flight.pop_front().expect("non-empty").wait().expect("append");
                    }
                    in_flight.push_back(wal.append(vec![0xAB; record_bytes]));
                }
                for ticket in in_flight {
                    ticket.wait().expect("append");
                }
            });
        }
    });
    start.elapsed()
}

fn report(label: &str, before: WalStats, after: WalStats, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let records = after.records_appended - before.records_appended;
    let bytes = after.bytes_written - before.bytes_written;
    let batches = after.batches - before.batches;
    let fsyncs = after.fsyncs - before.fsyncs;
    if records == 0 {
        // Filtered out on the command line: nothing ran.
        return;
    }
    eprintln!(
        "wal-stats {label}: {:.0} records/s, {:.1} MB/s, mean batch {:.1} records, {:.0} fsyncs/s ({records} records in {secs:.2} s)",
        records as f64 / secs,
        bytes as f64 / secs / 1e6,
        records as f64 / batches.max(1) as f64,
        fsyncs as f64 / secs,
    );
}

fn append_always(c: &mut Criterion) {
    let shapes = [
        (
            "1",
            Shape {
                producers: 1,
                threads: 1,
                in_flight: 1,
            },
        ),
        (
            "16",
            Shape {
                producers: 16,
                threads: 16,
                in_flight: 1,
            },
        ),
        (
            "256",
            Shape {
                producers: 256,
                threads: DRIVER_THREADS,
                in_flight: IN_FLIGHT_PER_PRODUCER,
            },
        ),
    ];
    let mut group = c.benchmark_group("append_always");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for record_bytes in RECORD_SIZES_BYTES {
        for (name, shape) in shapes {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = WalConfig {
                sync: SyncPolicy::Always,
                ..WalConfig::default()
            };
            let (wal, _) = Wal::open(dir.path(), config).expect("open");
            let before = wal.stats();
            let mut busy = Duration::ZERO;
            group.throughput(Throughput::Elements(1));
            group.bench_function(
                BenchmarkId::new(format!("producers_{name}"), format!("{record_bytes}B")),
                |b| {
                    b.iter_custom(|iters| {
                        let elapsed = drive(&wal, shape, record_bytes, iters);
                        busy += elapsed;
                        elapsed
                    });
                },
            );
            report(
                &format!("append_always producers_{name} {record_bytes}B"),
                before,
                wal.stats(),
                busy,
            );
            wal.close().expect("close");
        }
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        sync: SyncPolicy::None,
        ..WalConfig::default()
    };
    {
        let (wal, _) = Wal::open(dir.path(), config.clone()).expect("open");
        let records: Vec<Vec<u8>> = (0..1000).map(|_| vec![0xCD; 128]).collect();
        for _ in 0..REPLAY_RECORDS / 1000 {
            let _ticket = wal.append_batch(records.clone());
        }
        wal.close().expect("close");
    }
    let (wal, report) = Wal::open(dir.path(), config).expect("reopen");
    assert_eq!(report.next_lsn, REPLAY_RECORDS + 1);
    let mut group = c.benchmark_group("replay");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(REPLAY_RECORDS));
    group.bench_function(BenchmarkId::new("read_from", "1M x 128B"), |b| {
        b.iter(|| {
            let mut n = 0u64;
            for record in wal.read_from(1).expect("reader") {
                let (_, payload) = record.expect("record");
                n += payload.len() as u64;
            }
            assert_eq!(n, REPLAY_RECORDS * 128);
        });
    });
    group.finish();
}

criterion_group!(benches, append_always, replay);
criterion_main!(benches);
