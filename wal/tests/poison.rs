//! Poisoning: a failed write or fsync fails that batch, every pending append and every later
//! one; nothing not known durable is acknowledged; after reopen every acknowledged record is
//! there.

mod common;

use std::sync::Arc;

use wal::{AppendTicket, CrashMode, SimFault, SimOp, SimStorage, WalError};

use common::{always, open_sim, payload, read_all};

/// Appends `n` records without waiting, returning the tickets.
fn append_many(wal: &wal::Wal, seed: u64, n: u64) -> Vec<AppendTicket> {
    (seed..seed + n).map(|i| wal.append(payload(i, 64))).collect()
}

fn check_poisoned_then_reopen(op: SimOp, fault: SimFault, expected_text: &str) {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    for i in 0..5 {
        assert_eq!(wal.append(payload(i, 64)).wait(), Ok(i + 1));
    }
    disk.fail_nth(op, 1, fault);
    let tickets = append_many(&wal, 5, 50);
    let mut acked = 5;
    let mut failed = 0;
    for ticket in tickets {
        match ticket.wait() {
            Ok(lsn) => {
                assert_eq!(failed, 0, "no ack after a failure");
                acked = lsn;
            }
            Err(WalError::Poisoned(reason)) => {
                assert!(reason.contains(expected_text), "{reason}");
                failed += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(failed > 0, "the failing batch was not acknowledged");
    let reason = wal.poisoned().expect("poisoned");
    assert!(reason.contains(expected_text), "{reason}");

    // Later appends fail at once.
    let later = wal.append(b"later".to_vec());
    assert_eq!(later.first_lsn(), 0);
    assert!(matches!(later.wait(), Err(WalError::Poisoned(_))));
    assert!(matches!(wal.close(), Err(WalError::Poisoned(_))));
    drop(wal);

    // Power loss after the failure, then reopen "with space free".
    let disk = Arc::new(disk.crash(CrashMode::DropUnsynced));
    let (wal, report) = open_sim(&disk, always()).expect("reopen");
    let records = read_all(&wal, 1);
    assert!(records.len() as u64 >= acked, "every acknowledged record survives");
    for (idx, (lsn, bytes)) in records.iter().enumerate() {
        assert_eq!(*lsn, idx as u64 + 1);
        assert_eq!(bytes, &payload(idx as u64, 64));
    }
    assert_eq!(report.next_lsn, records.len() as u64 + 1);
    assert_eq!(wal.append(b"again".to_vec()).wait(), Ok(report.next_lsn));
}

#[test]
fn failed_fsync_with_eio_poisons_the_log() {
    check_poisoned_then_reopen(SimOp::Sync, SimFault::Eio, "os error 5");
}

#[test]
fn failed_write_with_enospc_poisons_the_log() {
    check_poisoned_then_reopen(SimOp::Write, SimFault::Enospc, "os error 28");
}

#[test]
fn failed_fsync_is_not_retried_into_an_acknowledgement() {
    // A failed fsync may have dropped dirty pages; a later successful fsync proves nothing
    // about them, so the log must stay poisoned instead of retrying.
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    disk.fail_nth(SimOp::Sync, 1, SimFault::Eio);
    assert!(matches!(wal.append(b"a".to_vec()).wait(), Err(WalError::Poisoned(_))));
    let (_, syncs_after_failure) = disk.op_counts();
    assert!(matches!(wal.append(b"b".to_vec()).wait(), Err(WalError::Poisoned(_))));
    assert_eq!(
        disk.op_counts().1,
        syncs_after_failure,
        "no sync attempted after poisoning"
    );
    assert_eq!(wal.durable_lsn(), 0);
}

#[test]
fn failed_segment_roll_poisons_the_log() {
    let disk = Arc::new(SimStorage::new());
    let config = wal::WalConfig {
        segment_size_bytes_max: 256,
        ..always()
    };
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    assert_eq!(wal.append(payload(0, 150)).wait(), Ok(1));
    // The next record rolls: sync old segment, create, header, sync, sync_dir. Fail the dir sync.
    disk.fail_nth(SimOp::Sync, 3, SimFault::Eio);
    assert!(matches!(wal.append(payload(1, 150)).wait(), Err(WalError::Poisoned(_))));
    drop(wal);
    let disk = Arc::new(disk.crash(CrashMode::DropUnsynced));
    let (wal, report) = open_sim(&disk, config).expect("reopen");
    assert!(report.next_lsn >= 2);
    assert_eq!(read_all(&wal, 1)[0], (1, payload(0, 150)));
}

#[test]
fn closed_log_refuses_appends() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    let pending = append_many(&wal, 0, 10);
    wal.close().expect("close");
    for (idx, ticket) in pending.into_iter().enumerate() {
        assert_eq!(ticket.wait(), Ok(idx as u64 + 1), "close flushes what was queued");
    }
    let refused = wal.append(b"x".to_vec());
    assert_eq!(refused.first_lsn(), 0);
    assert_eq!(refused.wait(), Err(WalError::Closed));
    assert_eq!(wal.durable_lsn(), 10);
}

#[test]
fn oversized_and_empty_appends_are_refused_without_poisoning() {
    let disk = Arc::new(SimStorage::new());
    let config = wal::WalConfig {
        record_size_bytes_max: 100,
        ..always()
    };
    let (wal, _) = open_sim(&disk, config).expect("open");
    assert_eq!(
        wal.append(vec![0; 101]).wait(),
        Err(WalError::RecordTooLarge { size: 101, max: 100 })
    );
    assert_eq!(
        wal.append_batch(vec![vec![1], vec![0; 200]]).wait(),
        Err(WalError::RecordTooLarge { size: 200, max: 100 })
    );
    assert_eq!(wal.append_batch(Vec::new()).wait(), Err(WalError::EmptyBatch));
    assert_eq!(wal.append(vec![0; 100]).wait(), Ok(1));
    assert_eq!(wal.poisoned(), None);
}

#[test]
fn dropping_the_last_handle_flushes_pending_appends() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    let clone = wal.clone();
    let pending = append_many(&clone, 0, 20);
    drop(wal);
    drop(clone);
    for (idx, ticket) in pending.into_iter().enumerate() {
        assert_eq!(ticket.wait(), Ok(idx as u64 + 1));
    }
    let disk = Arc::new(disk.crash(CrashMode::DropUnsynced));
    let (_, report) = open_sim(&disk, always()).expect("reopen");
    assert_eq!(report.next_lsn, 21);
}

#[test]
fn full_queue_refuses_appends_without_poisoning() {
    let disk = Arc::new(SimStorage::new());
    // 84-byte payloads make 100-byte frames.
    let config = wal::WalConfig {
        queue_bytes_max: 250,
        ..always()
    };
    let (wal, _) = open_sim(&disk, config).expect("open");
    disk.pause_syncs();
    let first = wal.append(payload(0, 84));
    disk.wait_for_held_sync();
    // The writer is stuck in the first batch's fsync; later appends wait in the queue.
    let queued: Vec<_> = (1..3).map(|i| wal.append(payload(i, 84))).collect();
    let refused = wal.append(payload(3, 84));
    assert_eq!(refused.first_lsn(), 0);
    assert_eq!(
        refused.wait(),
        Err(WalError::QueueFull {
            queued_bytes: 200,
            max_bytes: 250
        })
    );
    disk.resume_syncs();
    assert_eq!(first.wait(), Ok(1));
    for (idx, ticket) in queued.into_iter().enumerate() {
        assert_eq!(ticket.wait(), Ok(idx as u64 + 2));
    }
    assert_eq!(wal.poisoned(), None);
    assert_eq!(wal.append(payload(4, 84)).wait(), Ok(4), "accepted again once drained");
}

#[test]
fn fsync_failure_fails_appends_queued_behind_the_failing_batch() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, always()).expect("open");
    disk.fail_nth(SimOp::Sync, 1, SimFault::Eio);
    disk.pause_syncs();
    let failing = wal.append(payload(0, 10));
    disk.wait_for_held_sync();
    let queued = append_many(&wal, 1, 5);
    disk.resume_syncs();
    assert!(matches!(failing.wait(), Err(WalError::Poisoned(_))));
    for ticket in queued {
        assert!(
            matches!(ticket.wait(), Err(WalError::Poisoned(_))),
            "pending appends fail too"
        );
    }
}
