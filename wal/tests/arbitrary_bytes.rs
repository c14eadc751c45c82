//! Arbitrary bytes in a log directory never make the log panic: opening (the recovery scan),
//! reading every record, loading snapshots and appending after recovery either work or return
//! an error. Inputs are real logs damaged at random (bit flips, cuts, spliced garbage, files
//! swapped), whole files of random bytes, and hand-built segments (per FORMAT.md) whose LSNs
//! sit at the edges of the number range.
//!
//! Case counts are bounded so the run stays short in CI.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use wal::{SimStorage, Storage, Wal, WalConfig};

use common::{open_sim, payload, small_segments};

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Damage {
    /// Flip bit `bit` of the byte at `at` (modulo the file length).
    Flip { at: usize, bit: u8 },
    /// Keep only the first `len` bytes (modulo the file length + 1).
    Cut { len: usize },
    /// Insert `bytes` at `at`.
    Splice { at: usize, bytes: Vec<u8> },
    /// Overwrite from `at` with `bytes`.
    Overwrite { at: usize, bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    let bytes = proptest::collection::vec(any::<u8>(), 1..48);
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Damage::Flip { at, bit }),
        2 => any::<usize>().prop_map(|len| Damage::Cut { len }),
        2 => (any::<usize>(), bytes.clone()).prop_map(|(at, bytes)| Damage::Splice { at, bytes }),
        2 => (any::<usize>(), bytes).prop_map(|(at, bytes)| Damage::Overwrite { at, bytes }),
    ]
}

fn apply(file: &mut Vec<u8>, damage: &Damage) {
    match damage {
        Damage::Flip { at, bit } if !file.is_empty() => {
            let at = at % file.len();
            file[at] ^= 1 << bit;
        }
        Damage::Flip { .. } => {}
        Damage::Cut { len } => file.truncate(len % (file.len() + 1)),
        Damage::Splice { at, bytes } => {
            let at = at % (file.len() + 1);
            file.splice(at..at, bytes.iter().copied());
        }
        Damage::Overwrite { at, bytes } => {
            let at = at % (file.len() + 1);
            for (i, b) in bytes.iter().enumerate() {
                match file.get_mut(at + i) {
                    Some(slot) => *slot = *b,
                    None => file.push(*b),
                }
            }
        }
    }
}

/// Puts `bytes` in a file named `name` on `disk`, durably.
fn put(disk: &SimStorage, name: &str, bytes: &[u8]) {
    disk.create_dir().expect("create_dir");
    if disk.file_names().iter().any(|n| n == name) {
        disk.set_file_bytes(name, bytes.to_vec());
        return;
    }
    disk.create(name).expect("create");
    disk.append(name, bytes).expect("append");
    disk.sync_data(name).expect("sync");
    disk.sync_dir().expect("sync_dir");
}

/// Opens the log on `disk` and uses it every way a recovered log is used. Errors are fine;
/// a panic fails the test.
fn exercise(disk: &Arc<SimStorage>, config: WalConfig) {
    let Ok((wal, report)) = open_sim(disk, config) else {
        return;
    };
    assert!(report.next_lsn >= 1);
    if let Ok(reader) = wal.read_from(wal.first_lsn()) {
        let mut expected = wal.first_lsn();
        for item in reader {
            match item {
                Ok((lsn, _)) => {
                    assert_eq!(lsn, expected, "readers return dense LSNs");
                    expected += 1;
                }
                Err(_) => break,
            }
        }
    }
    let _ = wal.load_latest_snapshot();
    if let Ok(lsn) = wal.append(b"after recovery".to_vec()).wait() {
        assert_eq!(lsn, report.next_lsn, "appends continue at the logical end");
    }
    let _ = wal.close();
}

/// A real log of `n` records (sizes from `sizes`), in small segments, with a snapshot if asked.
fn real_log(sizes: &[usize], snapshot_at: Option<u64>) -> Arc<SimStorage> {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, small_segments(512)).expect("open");
    for (i, len) in sizes.iter().enumerate() {
        wal.append(payload(i as u64, *len)).wait().expect("append");
    }
    if let Some(at) = snapshot_at.filter(|at| *at <= sizes.len() as u64 + 1) {
        wal.write_snapshot(at.max(1), b"snapshot blob").expect("snapshot");
    }
    wal.close().expect("close");
    disk
}

/// A segment header per FORMAT.md (magic, version 1, reserved, first LSN, CRC of 0..24).
fn segment_header(first_lsn: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(b"OMSWALSG");
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

/// A record frame per FORMAT.md (length, CRC over LSN + length + payload, LSN, payload).
fn frame(lsn: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let crc = crc32c::crc32c(&lsn.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, payload);
    let mut f = Vec::new();
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(&lsn.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn edge_lsn() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(2),
        Just(i64::MAX as u64 - 1),
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 + 1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// A real log, then damage to one of its files (segment or snapshot), then recovery.
    #[test]
    fn a_damaged_real_log_never_panics(
        sizes in proptest::collection::vec(0usize..200, 0..14),
        snapshot_at in proptest::option::of(1u64..16),
        file_pick in any::<usize>(),
        damages in proptest::collection::vec(damage(), 1..5),
    ) {
        let disk = real_log(&sizes, snapshot_at);
        let names = disk.file_names();
        let name = &names[file_pick % names.len()];
        let mut bytes = disk.file_bytes(name).expect("bytes");
        for d in &damages {
            apply(&mut bytes, d);
        }
        disk.set_file_bytes(name, bytes);
        exercise(&disk, small_segments(512));
    }

    /// Files of random bytes under segment and snapshot names.
    #[test]
    fn random_files_never_panic(
        files in proptest::collection::vec(
            (prop_oneof![Just("wal-"), Just("snap-"), Just("x-")], edge_lsn(), proptest::collection::vec(any::<u8>(), 0..300)),
            1..4,
        ),
        with_header in any::<bool>(),
    ) {
        let disk = Arc::new(SimStorage::new());
        for (kind, lsn, body) in &files {
            let name = match *kind {
                "wal-" => format!("wal-{lsn:020}.log"),
                "snap-" => format!("snap-{lsn:020}.snap"),
                _ => format!("x-{lsn}"),
            };
            let mut bytes = if with_header && *kind == "wal-" { segment_header(*lsn) } else { Vec::new() };
            bytes.extend_from_slice(body);
            put(&disk, &name, &bytes);
        }
        exercise(&disk, WalConfig { record_size_bytes_max: 4096, ..WalConfig::default() });
    }

    /// Well-formed segments whose LSNs sit at the edges of the range, with valid frames (some
    /// out of sequence) and a damaged tail.
    #[test]
    fn valid_frames_at_the_edges_of_the_lsn_range_never_panic(
        first_lsn in edge_lsn(),
        lsn_steps in proptest::collection::vec(prop_oneof![8 => Just(1u64), 1 => Just(0u64), 1 => any::<u64>()], 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
        second_segment in any::<bool>(),
    ) {
        let disk = Arc::new(SimStorage::new());
        let mut bytes = segment_header(first_lsn);
        let mut lsn = first_lsn;
        for (i, step) in lsn_steps.iter().enumerate() {
            bytes.extend_from_slice(&frame(lsn, &payload(i as u64, i * 7)));
            lsn = lsn.wrapping_add(*step);
        }
        bytes.extend_from_slice(&tail);
        put(&disk, &format!("wal-{first_lsn:020}.log"), &bytes);
        if second_segment {
            let mut next = segment_header(lsn);
            next.extend_from_slice(&frame(lsn, b"next"));
            put(&disk, &format!("wal-{lsn:020}.log"), &next);
        }
        exercise(&disk, WalConfig::default());
    }
}

/// The edges found by the properties above, pinned: a segment named for LSN 0 (whose torn
/// header recovery would otherwise rewrite with LSN 0) and one at the largest LSNs.
#[test]
fn segments_named_outside_the_lsn_range_are_corrupt_not_a_panic() {
    for lsn in [0, i64::MAX as u64 + 1, u64::MAX] {
        let disk = Arc::new(SimStorage::new());
        put(&disk, &format!("wal-{lsn:020}.log"), &[0; 10]);
        let err = open_sim(&disk, WalConfig::default()).expect_err("refused");
        assert!(matches!(err, wal::WalError::Corrupt { .. }), "{lsn}: {err:?}");
    }
    let disk = Arc::new(SimStorage::new());
    let top = i64::MAX as u64;
    let mut bytes = segment_header(top);
    bytes.extend_from_slice(&frame(top, b"last"));
    put(&disk, &format!("wal-{top:020}.log"), &bytes);
    let (wal, report) = open_sim(&disk, WalConfig::default()).expect("the largest LSN is readable");
    assert_eq!(report.next_lsn, top + 1);
    drop::<Wal>(wal);
}
