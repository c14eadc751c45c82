//! Snapshots: atomic write, pruning to `snapshots_kept`, deletion of covered segments, reading
//! after deletion and reopen, and fallback from a corrupt newest snapshot.

mod common;

use std::sync::Arc;

use wal::{SimStorage, Wal, WalConfig, WalError};

use common::{open_sim, payload, read_all};

fn config() -> WalConfig {
    WalConfig {
        segment_size_bytes_max: 1024,
        snapshots_kept: 2,
        ..WalConfig::default()
    }
}

fn append_n(wal: &Wal, from_seed: u64, n: u64) {
    for i in from_seed..from_seed + n {
        wal.append(payload(i, 200)).wait().expect("append");
    }
}

fn segments(disk: &SimStorage) -> Vec<String> {
    disk.file_names().into_iter().filter(|n| n.ends_with(".log")).collect()
}

fn snapshots(disk: &SimStorage) -> Vec<String> {
    disk.file_names().into_iter().filter(|n| n.ends_with(".snap")).collect()
}

#[test]
fn snapshots_delete_covered_segments_and_reads_continue_after_reopen() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 0, 40);
    let n_segments_before = segments(&disk).len();
    assert!(n_segments_before >= 8, "{n_segments_before} segments");

    wal.write_snapshot(21, b"state at 20").expect("snapshot 1");
    // Only one snapshot: segments wholly below LSN 21 go.
    assert!(
        wal.first_lsn() <= 21 && wal.first_lsn() > 1,
        "first_lsn {}",
        wal.first_lsn()
    );
    let first_after_one = wal.first_lsn();
    append_n(&wal, 40, 10);
    wal.write_snapshot(41, b"state at 40").expect("snapshot 2");
    // Two kept: the oldest (21) still bounds deletion.
    assert_eq!(wal.first_lsn(), first_after_one);
    wal.write_snapshot(51, b"state at 50").expect("snapshot 3");
    assert_eq!(snapshots(&disk).len(), 2, "pruned to snapshots_kept");
    assert!(wal.first_lsn() > first_after_one && wal.first_lsn() <= 41);
    assert_eq!(
        wal.load_latest_snapshot().expect("load"),
        Some((51, b"state at 50".to_vec()))
    );

    let err = wal.read_from(1).expect_err("deleted records are unavailable");
    assert!(matches!(err, WalError::LsnUnavailable { requested: 1, .. }), "{err:?}");
    let tail = read_all(&wal, 41);
    assert_eq!(tail.len(), 10);
    assert_eq!(tail[0], (41, payload(40, 200)));

    wal.close().expect("close");
    drop(wal);
    let (wal, report) = open_sim(&disk, config()).expect("reopen");
    assert_eq!(report.next_lsn, 51);
    let (next_lsn, blob) = wal.load_latest_snapshot().expect("load").expect("snapshot");
    assert_eq!((next_lsn, blob.as_slice()), (51, &b"state at 50"[..]));
    assert_eq!(read_all(&wal, 41).len(), 10);
    assert_eq!(wal.append(b"x".to_vec()).wait(), Ok(51));
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_the_older_one() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 0, 30);
    wal.write_snapshot(11, b"older").expect("snapshot");
    wal.write_snapshot(31, b"newer").expect("snapshot");
    let newest = snapshots(&disk).into_iter().max().expect("newest");
    let mut bytes = disk.file_bytes(&newest).expect("bytes");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    disk.set_file_bytes(&newest, bytes);

    assert_eq!(wal.load_latest_snapshot().expect("load"), Some((11, b"older".to_vec())));
    // The older snapshot can still be replayed from: deletion kept its segments.
    let records = read_all(&wal, 11);
    assert_eq!(records.len(), 20);
    assert_eq!(records[0].0, 11);
}

#[test]
fn snapshot_beyond_the_durable_end_is_refused() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 0, 3);
    let err = wal.write_snapshot(10, b"future").expect_err("ahead");
    assert_eq!(
        err,
        WalError::SnapshotAhead {
            next_lsn: 10,
            durable_lsn: 3
        }
    );
    assert_eq!(wal.load_latest_snapshot().expect("load"), None);
}

#[test]
fn leftover_temp_snapshot_is_removed_on_open() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 0, 3);
    // Crash in the middle of write_snapshot: after the temp file's sync, before the rename.
    use wal::Storage;
    disk.create("snap-00000000000000000004.snap.tmp").expect("create");
    disk.sync_dir().expect("sync_dir");
    wal.close().expect("close");
    drop(wal);
    let (wal, _) = open_sim(&disk, config()).expect("reopen");
    assert!(disk.file_names().iter().all(|n| !n.ends_with(".tmp")));
    assert_eq!(wal.load_latest_snapshot().expect("load"), None);
}

#[test]
fn snapshot_on_real_files_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _) = Wal::open(dir.path(), config()).expect("open");
    append_n(&wal, 0, 20);
    wal.write_snapshot(21, b"all of it").expect("snapshot");
    assert!(wal.first_lsn() > 1, "covered segments deleted");
    wal.close().expect("close");
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), config()).expect("reopen");
    assert_eq!(report.next_lsn, 21);
    assert_eq!(
        wal.load_latest_snapshot().expect("load"),
        Some((21, b"all of it".to_vec()))
    );
    assert!(read_all(&wal, 21).is_empty());
    assert!(dir.path().join("snap-00000000000000000021.snap").exists());
}
