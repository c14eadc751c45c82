//! A log that lost records must not be opened as if nothing happened: a log that ends before
//! its newest snapshot, a directory whose segments are gone, a directory whose owner says the
//! log existed. And a first boot's directory survives a power cut once a record is
//! acknowledged (the directory's own entry is synced, not only its files).

mod common;

use std::sync::Arc;

use wal::{CrashMode, SimStorage, Storage, SyncPolicy, Wal, WalConfig, WalError};

use common::{open_sim, payload, read_all, small_segments};

fn segments(disk: &SimStorage) -> Vec<String> {
    disk.file_names().into_iter().filter(|n| n.ends_with(".log")).collect()
}

/// 20 records in segments of ~4, a snapshot after record 20, closed.
fn log_with_snapshot(disk: &Arc<SimStorage>) -> WalConfig {
    let config = WalConfig {
        snapshots_kept: 2,
        ..small_segments(600)
    };
    let (wal, _) = open_sim(disk, config.clone()).expect("open");
    for i in 0..20 {
        wal.append(payload(i, 100)).wait().expect("append");
    }
    wal.write_snapshot(21, b"state after 20").expect("snapshot");
    wal.close().expect("close");
    config
}

#[test]
fn a_log_cut_short_behind_its_snapshot_is_refused_naming_both_positions() {
    let disk = Arc::new(SimStorage::new());
    let config = log_with_snapshot(&disk);
    let last = segments(&disk).pop().expect("a segment");
    let first_lsn: u64 = last["wal-".len()..last.len() - ".log".len()].parse().expect("LSN");
    assert!(first_lsn > 1 && first_lsn <= 20, "{last}");
    // Cut the last segment back to its header, leaving a torn record after it.
    let mut cut = disk.file_bytes(&last).expect("bytes")[..32 + 20].to_vec();
    cut[40] ^= 0xff;
    disk.set_file_bytes(&last, cut.clone());
    let files_before = disk.file_names();

    for _ in 0..2 {
        let err = open_sim(&disk, config.clone()).expect_err("a log behind its snapshot is refused");
        let WalError::LogBehindSnapshot {
            snapshot_end_lsn,
            log_end_lsn,
            ..
        } = err.clone()
        else {
            panic!("expected LogBehindSnapshot, got {err:?}");
        };
        assert_eq!((snapshot_end_lsn, log_end_lsn), (20, first_lsn - 1));
        let message = err.to_string();
        assert!(
            message.contains("LSN 20") && message.contains(&format!("LSN {}", first_lsn - 1)),
            "{message}"
        );
        // Nothing was cut, appended or created: opening again finds the same picture.
        assert_eq!(disk.file_names(), files_before);
        assert_eq!(disk.file_bytes(&last), Some(cut.clone()), "the torn tail is left alone");
    }
}

#[test]
fn deleted_segments_behind_a_snapshot_are_refused_on_a_real_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        snapshots_kept: 2,
        ..small_segments(600)
    };
    let (wal, _) = Wal::open(dir.path(), config.clone()).expect("open");
    for i in 0..20 {
        wal.append(payload(i, 100)).wait().expect("append");
    }
    // Two snapshots kept: segments from the older one (9) on stay.
    wal.write_snapshot(9, b"state after 8").expect("snapshot");
    wal.write_snapshot(21, b"state after 20").expect("snapshot");
    wal.close().expect("close");
    drop(wal);
    let mut logs: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "{logs:?}");
    // The newest two segments go: the log now ends well before the snapshot.
    for path in logs.iter().rev().take(2) {
        std::fs::remove_file(path).expect("remove");
    }
    let err = Wal::open(dir.path(), config).expect_err("refused");
    assert!(
        matches!(err, WalError::LogBehindSnapshot { snapshot_end_lsn: 20, log_end_lsn, .. } if log_end_lsn < 20),
        "{err:?}"
    );
}

#[test]
fn a_directory_with_a_snapshot_and_no_segment_is_refused() {
    let disk = Arc::new(SimStorage::new());
    let config = log_with_snapshot(&disk);
    for name in segments(&disk) {
        disk.remove(&name).expect("remove");
    }
    let err = open_sim(&disk, config).expect_err("refused");
    assert!(
        matches!(&err, WalError::LogMissing { evidence, .. } if evidence.contains("snapshot")),
        "{err:?}"
    );
    assert!(segments(&disk).is_empty(), "no empty log was started");
}

#[test]
fn a_log_its_owner_knows_existed_is_not_started_afresh() {
    let config = WalConfig {
        create_if_missing: false,
        ..WalConfig::default()
    };
    let disk = Arc::new(SimStorage::new());
    let err = open_sim(&disk, config.clone()).expect_err("refused");
    assert!(matches!(err, WalError::LogMissing { .. }), "{err:?}");
    assert!(segments(&disk).is_empty());
    // An existing log opens as usual with the same setting.
    let (wal, _) = open_sim(&disk, WalConfig::default()).expect("create");
    wal.append(b"one".to_vec()).wait().expect("append");
    wal.close().expect("close");
    drop(wal);
    let (wal, report) = open_sim(&disk, config).expect("existing log");
    assert_eq!(report.next_lsn, 2);
    assert_eq!(read_all(&wal, 1), vec![(1, b"one".to_vec())]);
}

/// Under `SyncPolicy::None` appends are acknowledged unsynced; a snapshot must still never get
/// ahead of what a crash leaves in the log.
#[test]
fn a_snapshot_never_covers_records_a_crash_can_take() {
    let disk = Arc::new(SimStorage::new());
    let config = WalConfig {
        sync: SyncPolicy::None,
        ..WalConfig::default()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    for i in 0..10 {
        wal.append(payload(i, 50)).wait().expect("append");
    }
    wal.write_snapshot(11, b"state after 10").expect("snapshot");
    let survivor = Arc::new(disk.crash(CrashMode::DropUnsynced));
    drop(wal);
    let (wal, report) = open_sim(&survivor, config).expect("the log reaches its snapshot");
    assert_eq!(report.next_lsn, 11);
    assert_eq!(read_all(&wal, 1).len(), 10);
}

/// A crash at any storage mutation of a first boot (creating the directory, its first
/// segment, the first append) keeps every acknowledged record: the directory's own entry is
/// synced before anything is acknowledged.
#[test]
fn a_first_boot_survives_a_crash_at_every_mutation() {
    let probe = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&probe, WalConfig::default()).expect("open");
    wal.append(b"first".to_vec()).wait().expect("append");
    let (writes, syncs) = probe.op_counts();
    drop(wal);
    for crash_at in 1..=writes + syncs + 1 {
        let disk = Arc::new(SimStorage::new());
        disk.crash_at_mutation(crash_at, CrashMode::DropUnsynced);
        let acked = match open_sim(&disk, WalConfig::default()) {
            Ok((wal, _)) => wal.append(b"first".to_vec()).wait().is_ok(),
            Err(_) => false,
        };
        let survivor = Arc::new(
            disk.take_crash_image()
                .unwrap_or_else(|| disk.crash(CrashMode::DropUnsynced)),
        );
        let (wal, _) = open_sim(&survivor, WalConfig::default()).expect("reopen after the crash");
        let records = read_all(&wal, 1);
        if acked {
            assert_eq!(records, vec![(1, b"first".to_vec())], "crash at mutation {crash_at}");
        }
    }
}

/// The simulated directory models the parent sync: without it, a crash loses the directory
/// with its fsynced files (what a real file system may do), which is why `create_dir` syncs.
#[test]
fn a_directory_whose_parent_was_never_synced_is_lost_in_a_crash() {
    let disk = SimStorage::new();
    disk.fail_nth(wal::SimOp::Sync, 1, wal::SimFault::Eio);
    assert!(disk.create_dir().is_err(), "the parent sync fails");
    disk.create("wal-00000000000000000001.log").expect("create");
    disk.append("wal-00000000000000000001.log", b"data").expect("append");
    disk.sync_data("wal-00000000000000000001.log").expect("sync");
    disk.sync_dir().expect("sync_dir");
    let survivor = disk.crash(CrashMode::DropUnsynced);
    assert!(survivor.file_names().is_empty());
    assert!(survivor.list().is_err(), "the directory itself is gone");
}

#[test]
fn opening_creates_missing_parent_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a").join("b").join("wal");
    let (wal, report) = Wal::open(&nested, WalConfig::default()).expect("open");
    assert_eq!(report.next_lsn, 1);
    wal.append(b"x".to_vec()).wait().expect("append");
    assert!(nested.is_dir());
    // A second creation of an existing directory is fine (it only syncs the parent).
    wal::create_dir_durable(&nested).expect("idempotent");
}
