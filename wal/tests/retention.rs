//! Retention for readers that are behind: a snapshot keeps the segments holding records a
//! reader still needs, within a byte bound; past the bound the oldest go and the report says
//! from which LSN the reader lost records (never a silent gap).

mod common;

use std::sync::Arc;

use wal::{Retain, SimStorage, Wal, WalConfig, WalError};

use common::{open_sim, payload};

fn config() -> WalConfig {
    WalConfig {
        segment_size_bytes_max: 1024,
        snapshots_kept: 1,
        ..WalConfig::default()
    }
}

fn append_n(wal: &Wal, n: u64) {
    for i in 0..n {
        wal.append(payload(i, 200)).wait().expect("append");
    }
}

fn segment_bytes(disk: &SimStorage) -> Vec<(String, u64)> {
    let mut out: Vec<_> = disk
        .file_names()
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .map(|n| {
            let len = disk.file_bytes(&n).expect("listed").len() as u64;
            (n, len)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_reader_behind_keeps_the_segments_it_needs_and_can_read_them() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 40);
    let n_before = segment_bytes(&disk).len();
    let retain = Retain {
        from_lsn: 5,
        bytes_max: u64::MAX,
    };
    let report = wal
        .write_snapshot_retaining(31, b"state at 30", retain)
        .expect("snapshot");
    assert_eq!(report.lost_from, None);
    assert!(report.first_lsn <= 5, "first_lsn {}", report.first_lsn);
    assert_eq!(wal.first_lsn(), report.first_lsn);
    assert!(report.retained_bytes > 0);
    // Only the segments wholly before LSN 5 went.
    assert!(segment_bytes(&disk).len() >= n_before - 1);
    let lsns: Vec<u64> = wal
        .read_from(5)
        .expect("readable")
        .map(|r| r.expect("record").0)
        .collect();
    assert_eq!(lsns, (5..=40).collect::<Vec<_>>());

    // Once the reader moved on, the next snapshot deletes what it no longer needs.
    let retain = Retain {
        from_lsn: 41,
        bytes_max: u64::MAX,
    };
    let report = wal
        .write_snapshot_retaining(41, b"state at 40", retain)
        .expect("snapshot");
    assert!(report.first_lsn > 30, "first_lsn {}", report.first_lsn);
    assert_eq!(report.retained_bytes, 0);
}

#[test]
fn past_the_bound_the_oldest_segments_go_and_the_loss_is_reported() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 40);
    let segments = segment_bytes(&disk);
    // Room for the two newest covered segments only.
    let covered: Vec<u64> = segments[..segments.len() - 1].iter().map(|(_, b)| *b).collect();
    let bound = covered[covered.len() - 2..].iter().sum::<u64>();
    let retain = Retain {
        from_lsn: 2,
        bytes_max: bound,
    };
    let report = wal
        .write_snapshot_retaining(41, b"state at 40", retain)
        .expect("snapshot");
    assert_eq!(report.lost_from, Some(2));
    assert!(report.retained_bytes <= bound);
    assert_eq!(report.retained_bytes, bound);
    assert_eq!(
        segment_bytes(&disk).len(),
        3,
        "two kept for the reader, and the active one"
    );
    match wal.read_from(2) {
        Err(WalError::LsnUnavailable {
            requested: 2,
            first_lsn,
        }) => assert_eq!(first_lsn, report.first_lsn),
        other => panic!("expected LsnUnavailable, got {other:?}"),
    }
}

#[test]
fn without_a_reader_a_snapshot_deletes_as_before() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, config()).expect("open");
    append_n(&wal, 40);
    let report = wal
        .write_snapshot_retaining(41, b"s", Retain::NOTHING)
        .expect("snapshot");
    assert_eq!((report.retained_bytes, report.lost_from), (0, None));
    assert_eq!(segment_bytes(&disk).len(), 1, "only the active segment is left");
}
