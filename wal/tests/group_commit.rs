//! Group commit and segment rolling edge cases: batches bounded by `batch_bytes_max`, records
//! larger than a segment, batches spanning a roll, torn segment creation, crashes inside
//! `write_snapshot`.

mod common;

use std::sync::Arc;

use wal::{CrashMode, SimStorage, WalConfig};

use common::{open_sim, payload, read_all};

#[test]
fn queue_larger_than_batch_bytes_max_is_written_in_several_bounded_writes() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        batch_bytes_max: 1000,
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config).expect("open");
    let tickets: Vec<_> = (0..50).map(|i| wal.append(payload(i, 84))).collect();
    for (idx, ticket) in tickets.into_iter().enumerate() {
        assert_eq!(ticket.wait(), Ok(idx as u64 + 1));
    }
    let stats = wal.stats();
    // 100-byte frames, at most 10 per write.
    assert!(stats.batches >= 5, "{stats:?}");
    assert_eq!(stats.records_appended, 50);
    assert_eq!(stats.bytes_written, 5000);
    assert_eq!(read_all(&wal, 1).len(), 50);
}

#[test]
fn record_larger_than_a_segment_goes_alone_into_its_own_segment() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        segment_size_bytes_max: 256,
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    assert_eq!(wal.append(payload(0, 10)).wait(), Ok(1));
    assert_eq!(wal.append(payload(1, 1000)).wait(), Ok(2));
    assert_eq!(wal.append(payload(2, 10)).wait(), Ok(3));
    wal.close().expect("close");
    drop(wal);
    let segments: Vec<String> = disk.file_names().into_iter().filter(|n| n.ends_with(".log")).collect();
    assert_eq!(segments.len(), 3, "{segments:?}");
    let (wal, report) = open_sim(&disk, config).expect("reopen");
    assert_eq!(report.next_lsn, 4);
    assert_eq!(read_all(&wal, 2)[0], (2, payload(1, 1000)));
}

#[test]
fn batch_spanning_a_segment_roll_is_acknowledged_once_and_read_back_in_order() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        segment_size_bytes_max: 512,
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    let records: Vec<Vec<u8>> = (0..20).map(|i| payload(i, 90)).collect();
    let ticket = wal.append_batch(records.clone());
    assert_eq!(ticket.first_lsn(), 1);
    assert_eq!(ticket.wait(), Ok(20));
    assert!(wal.stats().segments_rolled >= 3);
    wal.close().expect("close");
    drop(wal);
    let (wal, _) = open_sim(&disk, config).expect("reopen");
    let read: Vec<Vec<u8>> = read_all(&wal, 1).into_iter().map(|(_, r)| r).collect();
    assert_eq!(read, records);
}

#[test]
fn zero_filled_last_segment_header_is_rewritten() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        segment_size_bytes_max: 256,
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    for i in 0..3 {
        wal.append(payload(i, 150)).wait().expect("append");
    }
    wal.close().expect("close");
    drop(wal);
    let last = disk
        .file_names()
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .max()
        .expect("segment");
    disk.set_file_bytes(&last, vec![0u8; 4096]);
    let (wal, report) = open_sim(&disk, config).expect("open rewrites the header");
    assert_eq!(report.truncated_bytes, 4096);
    assert_eq!(report.next_lsn, 3, "record 3 lived in the zeroed segment");
    assert_eq!(wal.append(b"x".to_vec()).wait(), Ok(3));
}

#[test]
fn crash_at_any_point_of_write_snapshot_leaves_a_usable_snapshot_and_log() {
    let config = WalConfig {
        segment_size_bytes_max: 512,
        snapshots_kept: 1,
        ..WalConfig::default()
    };
    for crash_at in 1..30 {
        let disk = Arc::new(SimStorage::new());
        let (wal, _) = open_sim(&disk, config.clone()).expect("open");
        for i in 0..20 {
            wal.append(payload(i, 100)).wait().expect("append");
        }
        wal.write_snapshot(6, b"old").expect("first snapshot");
        disk.crash_at_mutation(crash_at, CrashMode::DropUnsynced);
        let outcome = wal.write_snapshot(16, b"new");
        let survivor = Arc::new(disk.crash(CrashMode::DropUnsynced));
        drop(wal);

        let (wal, report) = open_sim(&survivor, config.clone()).expect("reopen");
        assert_eq!(report.next_lsn, 21);
        let (next_lsn, blob) = wal.load_latest_snapshot().expect("load").expect("a snapshot survives");
        match next_lsn {
            6 => assert_eq!(blob, b"old"),
            16 => assert_eq!(blob, b"new"),
            other => panic!("unexpected snapshot {other}"),
        }
        if outcome.is_ok() {
            assert_eq!(next_lsn, 16, "a completed snapshot is durable");
        }
        // Whatever snapshot survived, the log can be replayed from it to the end.
        let records = read_all(&wal, next_lsn);
        assert_eq!(records.len() as u64, 21 - next_lsn, "crash_at {crash_at}");
        assert!(survivor.file_names().iter().all(|n| !n.ends_with(".tmp")));
    }
}

/// Waits (yielding, never sleeping) until `cond` holds; fails after `secs` seconds.
fn wait_until(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn interval_policy_acknowledges_after_the_write_and_syncs_on_request() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        sync: wal::SyncPolicy::Interval { interval_ms: 3_600_000 },
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config).expect("open");
    let (_, syncs_at_open) = disk.op_counts();
    assert_eq!(wal.append(payload(1, 40)).wait(), Ok(1));
    // Written and acknowledged, not yet synced: an hour has not passed.
    assert_eq!(wal.durable_lsn(), 0);
    assert_eq!(disk.op_counts().1, syncs_at_open);
    assert_eq!(wal.sync().wait(), Ok(1));
    assert_eq!(wal.durable_lsn(), 1);
    assert_eq!(read_all(&wal, 1).len(), 1);
}

#[test]
fn interval_policy_syncs_by_its_timer_without_further_appends() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        sync: wal::SyncPolicy::Interval { interval_ms: 5 },
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config).expect("open");
    for i in 0..3 {
        wal.append(payload(i, 40)).wait().expect("acknowledged");
    }
    // Nobody appends or asks for a sync again: only the writer's timer can make these durable.
    wait_until(30, "the interval fsync", || wal.durable_lsn() == 3);
    assert_eq!(read_all(&wal, 1).len(), 3);
}
