//! Concurrency: many producers with many appends in flight; acknowledgements in LSN order,
//! never before durability; tickets usable as futures without any runtime.

mod common;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::{ArcWake, waker};
use wal::{AppendTicket, Lsn, SimStorage, SyncPolicy, Wal, WalConfig};

use common::{always, open_sim, payload, read_all};

/// A waker that records, in wake order, the LSN of the ticket it belongs to.
struct RecordingWaker {
    lsn: Lsn,
    woken: Arc<Mutex<Vec<Lsn>>>,
}

impl ArcWake for RecordingWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.lock().expect("lock").push(arc_self.lsn);
    }
}

#[test]
fn many_producers_are_acknowledged_in_lsn_order_and_all_durable_after_reopen() {
    const N_THREADS: u64 = 8;
    const N_PER_THREAD: u64 = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        segment_size_bytes_max: 64 * 1024,
        ..always()
    };
    let (wal, _) = Wal::open(dir.path(), config.clone()).expect("open");
    let woken = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..N_THREADS)
        .map(|thread_idx| {
            let wal = wal.clone();
            let woken = Arc::clone(&woken);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let mut in_flight: Vec<AppendTicket> = Vec::new();
                for i in 0..N_PER_THREAD {
                    let bytes = payload(thread_idx * 1_000_000 + i, (i % 300) as usize);
                    let mut ticket = wal.append(bytes.clone());
                    let lsn = ticket.first_lsn();
                    // Register a recording waker; `wait` below leaves it in place, so the writer
                    // calls it when completing the ticket.
                    let recorder = waker(Arc::new(RecordingWaker {
                        lsn,
                        woken: Arc::clone(&woken),
                    }));
                    let mut cx = Context::from_waker(&recorder);
                    mine.push((lsn, bytes));
                    // Already durable: no waker will be called, and none is recorded.
                    if let Poll::Ready(result) = std::pin::Pin::new(&mut ticket).poll(&mut cx) {
                        assert_eq!(result, Ok(lsn));
                        continue;
                    }
                    in_flight.push(ticket);
                    if in_flight.len() >= 16 {
                        for ticket in in_flight.drain(..) {
                            let acked = ticket.wait().expect("ack");
                            assert!(wal.durable_lsn() >= acked, "acknowledged only once durable");
                        }
                    }
                }
                for ticket in in_flight {
                    ticket.wait().expect("ack");
                }
                mine
            })
        })
        .collect();
    let mut expected: Vec<(Lsn, Vec<u8>)> = handles.into_iter().flat_map(|h| h.join().expect("producer")).collect();
    expected.sort();
    let n_total = N_THREADS * N_PER_THREAD;
    assert_eq!(expected.len() as u64, n_total);
    let woken = woken.lock().expect("lock").clone();
    assert!(
        woken.len() as u64 > n_total / 2,
        "most tickets were completed through their waker"
    );
    assert!(
        woken.windows(2).all(|w| w[0] < w[1]),
        "acknowledgements arrive in LSN order"
    );
    let stats = wal.stats();
    assert_eq!(stats.records_appended, n_total);
    assert!(
        stats.batches < n_total,
        "group commit batched appends ({} writes)",
        stats.batches
    );
    wal.close().expect("close");
    drop(wal);

    let (wal, report) = Wal::open(dir.path(), config).expect("reopen");
    assert_eq!(report.next_lsn, n_total + 1);
    assert!(report.segments > 1);
    assert_eq!(read_all(&wal, 1), expected);
}

#[test]
fn lsn_is_assigned_before_append_returns() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    let first = wal.append(b"a".to_vec());
    assert_eq!(wal.next_lsn(), 2);
    let batch = wal.append_batch(vec![b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]);
    assert_eq!((first.first_lsn(), batch.first_lsn()), (1, 2));
    assert_eq!(wal.next_lsn(), 5);
    assert_eq!(batch.wait(), Ok(4), "a batch resolves to its last LSN");
    assert_eq!(first.wait(), Ok(1));
    assert_eq!(read_all(&wal, 3), vec![(3, b"c".to_vec()), (4, b"d".to_vec())]);
}

#[test]
fn ticket_resolves_as_a_future_on_a_plain_executor() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    let results = futures::executor::block_on(async {
        let a = wal.append(b"one".to_vec());
        let b = wal.append(b"two".to_vec());
        (a.await, b.await)
    });
    assert_eq!(results, (Ok(1), Ok(2)));
    assert_eq!(wal.durable_lsn(), 2);
}

#[test]
fn reader_stops_at_the_durable_end_as_of_the_call() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    wal.append(b"1".to_vec()).wait().expect("append");
    let reader = wal.read_from(1).expect("reader");
    wal.append(b"2".to_vec()).wait().expect("append");
    let seen: Vec<_> = reader.collect::<Result<_, _>>().expect("read");
    assert_eq!(seen, vec![(1, b"1".to_vec())]);
    assert_eq!(read_all(&wal, 1).len(), 2);
}

#[test]
fn interval_policy_acknowledges_after_write_and_syncs_on_close() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        sync: SyncPolicy::Interval { interval_ms: 60_000 },
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    let syncs_at_open = disk.op_counts().1;
    assert_eq!(wal.append(b"x".to_vec()).wait(), Ok(1));
    assert_eq!(
        disk.op_counts().1,
        syncs_at_open,
        "no fsync before the interval elapses"
    );
    wal.close().expect("close");
    assert_eq!(wal.durable_lsn(), 1, "close syncs");
    drop(wal);
    let disk = Arc::new(disk.crash(wal::CrashMode::DropUnsynced));
    let (_, report) = open_sim(&disk, config).expect("reopen");
    assert_eq!(report.next_lsn, 2);
}

#[test]
fn sync_request_makes_interval_appends_durable_and_lets_a_snapshot_through() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        sync: SyncPolicy::Interval { interval_ms: 60_000 },
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    assert_eq!(wal.sync().wait(), Ok(0), "nothing to sync");
    for i in 0..5 {
        assert_eq!(wal.append(payload(i, 10)).wait(), Ok(i + 1));
    }
    assert_eq!(wal.durable_lsn(), 0, "Interval acknowledges before syncing");
    assert_eq!(wal.sync().wait(), Ok(5));
    assert_eq!(wal.durable_lsn(), 5);
    wal.append(payload(5, 10)).wait().expect("append");
    wal.write_snapshot(7, b"six records")
        .expect("snapshot syncs what it covers");
    assert_eq!(wal.durable_lsn(), 6);
    let survivor = Arc::new(disk.crash(wal::CrashMode::DropUnsynced));
    drop(wal);
    let (wal, report) = open_sim(&survivor, config).expect("reopen");
    assert_eq!(report.next_lsn, 7);
    assert_eq!(
        wal.load_latest_snapshot().expect("load"),
        Some((7, b"six records".to_vec()))
    );
}

#[test]
fn sync_request_queued_behind_appends_waits_for_them() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        sync: SyncPolicy::None,
        batch_bytes_max: 200,
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config).expect("open");
    let tickets: Vec<_> = (0..20).map(|i| wal.append(payload(i, 84))).collect();
    let synced = wal.sync();
    assert_eq!(synced.first_lsn(), 20);
    assert_eq!(synced.wait(), Ok(20));
    for ticket in tickets {
        ticket.wait().expect("append");
    }
    let survivor = Arc::new(disk.crash(wal::CrashMode::DropUnsynced));
    drop(wal);
    let (_, report) = open_sim(&survivor, WalConfig::default()).expect("reopen");
    assert_eq!(report.next_lsn, 21, "the sync request covered all 20 records");
}

#[test]
fn handles_and_tickets_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Wal>();
    assert_send_sync::<SimStorage>();
    assert_send_sync::<wal::FsStorage>();
    assert_send::<AppendTicket>();
    assert_send::<wal::WalReader>();
}
