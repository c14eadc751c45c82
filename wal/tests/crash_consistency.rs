//! Crash consistency: after a crash at any point, reopening yields exactly a prefix of the
//! appended records that contains every acknowledged one, and appends continue densely.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use wal::{AppendTicket, CrashMode, Lsn, SimStorage, Wal};

use common::{open_sim, payload, read_all, small_segments};

/// One step of a generated workload.
#[derive(Debug, Clone)]
enum Step {
    /// Append one record of this many bytes; keep the ticket in flight.
    Append(usize),
    /// Append several records as one batch.
    Batch(Vec<usize>),
    /// Wait for every ticket in flight.
    WaitAll,
}

fn step() -> impl Strategy<Value = Step> {
    let size = prop_oneof![0usize..=64, 65usize..=2048, 2049usize..=65536];
    prop_oneof![
        6 => size.clone().prop_map(Step::Append),
        2 => proptest::collection::vec(size, 1..4).prop_map(Step::Batch),
        2 => Just(Step::WaitAll),
    ]
}

/// Runs `steps` on a fresh simulated disk that crashes at its `crash_at`-th mutation, then
/// checks the recovered log against what was appended and acknowledged.
fn run_and_check(steps: &[Step], crash_at: u64, mode: CrashMode, segment_size_bytes_max: u64) {
    let disk = Arc::new(SimStorage::new());
    let config = small_segments(segment_size_bytes_max);
    let (wal, _) = open_sim(&disk, config.clone()).expect("fresh open");
    disk.crash_at_mutation(crash_at, mode);

    let mut appended: Vec<Vec<u8>> = Vec::new();
    let mut acked_lsn: Lsn = 0;
    let mut in_flight: Vec<AppendTicket> = Vec::new();
    let wait_all = |in_flight: &mut Vec<AppendTicket>, acked_lsn: &mut Lsn| {
        for ticket in in_flight.drain(..) {
            if let Ok(lsn) = ticket.wait() {
                assert!(lsn > *acked_lsn, "acks arrive in LSN order");
                *acked_lsn = lsn;
            }
        }
    };
    for (idx, step) in steps.iter().enumerate() {
        let seed = idx as u64;
        match step {
            Step::Append(len) => {
                let record = payload(seed, *len);
                let ticket = wal.append(record.clone());
                if ticket.first_lsn() != 0 {
                    assert_eq!(ticket.first_lsn(), appended.len() as u64 + 1);
                    appended.push(record);
                }
                in_flight.push(ticket);
            }
            Step::Batch(lens) => {
                let records: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(i, len)| payload(seed * 8 + i as u64, *len))
                    .collect();
                let ticket = wal.append_batch(records.clone());
                if ticket.first_lsn() != 0 {
                    appended.extend(records);
                }
                in_flight.push(ticket);
            }
            Step::WaitAll => wait_all(&mut in_flight, &mut acked_lsn),
        }
    }
    wait_all(&mut in_flight, &mut acked_lsn);
    let crashed = disk.crash(mode);
    drop(wal);

    let disk = Arc::new(crashed);
    let (wal, report) = open_sim(&disk, config.clone()).expect("reopen after crash");
    let records = read_all(&wal, 1);
    assert!(records.len() as u64 >= acked_lsn, "every acknowledged record survives");
    assert!(records.len() <= appended.len(), "nothing that was not appended appears");
    for (idx, (lsn, bytes)) in records.iter().enumerate() {
        assert_eq!(*lsn, idx as u64 + 1, "LSNs are dense from 1");
        assert_eq!(bytes, &appended[idx], "record {lsn} is the one appended");
    }
    assert_eq!(report.next_lsn, records.len() as u64 + 1);

    // Appends continue at the logical end and survive a clean restart.
    let next = wal
        .append(b"after crash".to_vec())
        .wait()
        .expect("append after recovery");
    assert_eq!(next, report.next_lsn);
    wal.close().expect("clean close");
    drop(wal);
    let (wal, report) = open_sim(&disk, config).expect("clean reopen");
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.next_lsn, next + 1);
    let records = read_all(&wal, next);
    assert_eq!(records, vec![(next, b"after crash".to_vec())]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn crash_at_random_point_keeps_an_acknowledged_prefix(
        steps in proptest::collection::vec(step(), 1..40),
        crash_at in 1u64..120,
        tear in any::<bool>(),
        seed in any::<u64>(),
        segment_size_bytes_max in prop_oneof![Just(4096u64), Just(65536u64), Just(1 << 20)],
    ) {
        let mode = if tear { CrashMode::TearUnsynced { seed } } else { CrashMode::DropUnsynced };
        run_and_check(&steps, crash_at, mode, segment_size_bytes_max);
    }
}

#[test]
fn crash_at_every_mutation_of_a_fixed_workload_recovers() {
    let steps: Vec<Step> = (0..12)
        .map(|i| match i % 4 {
            0 => Step::Append(100),
            1 => Step::Batch(vec![10, 3000, 0]),
            2 => Step::Append(5000),
            _ => Step::WaitAll,
        })
        .collect();
    // A dry run counts the workload's storage mutations, so every one of them is a crash point.
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, small_segments(8192)).expect("open");
    let (writes_at_open, syncs_at_open) = disk.op_counts();
    for step in &steps {
        match step {
            Step::Append(len) => wal.append(payload(0, *len)).wait().map(drop).expect("append"),
            Step::Batch(lens) => {
                let records = lens.iter().map(|len| payload(0, *len)).collect();
                wal.append_batch(records).wait().map(drop).expect("append")
            }
            Step::WaitAll => {}
        }
    }
    let (writes, syncs) = disk.op_counts();
    let n_mutations = writes - writes_at_open + syncs - syncs_at_open;
    assert!(n_mutations >= 10, "{n_mutations}");
    for crash_at in 1..=n_mutations + 1 {
        run_and_check(&steps, crash_at, CrashMode::DropUnsynced, 8192);
        run_and_check(&steps, crash_at, CrashMode::TearUnsynced { seed: crash_at }, 8192);
    }
}

#[test]
fn reopen_without_crash_continues_lsns() {
    let disk = Arc::new(SimStorage::new());
    let config = small_segments(1024);
    let (wal, report) = open_sim(&disk, config.clone()).expect("open");
    assert_eq!(report.next_lsn, 1);
    for i in 0..50u64 {
        assert_eq!(wal.append(payload(i, 100)).wait(), Ok(i + 1));
    }
    wal.close().expect("close");
    drop(wal);
    let (wal, report): (Wal, _) = open_sim(&disk, config).expect("reopen");
    assert_eq!(report.next_lsn, 51);
    assert!(report.segments > 1, "small segments rolled");
    assert_eq!(wal.append(vec![1]).wait(), Ok(51));
    let records = read_all(&wal, 1);
    assert_eq!(records.len(), 51);
    assert_eq!(records[10], (11, payload(10, 100)));
}
