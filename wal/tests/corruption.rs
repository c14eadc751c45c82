//! Corruption handling: a torn or garbage tail is truncated; damage before the tail is a
//! hard error naming the segment file and byte offset; nothing is ever skipped.

mod common;

use std::io::Write;
use std::sync::Arc;

use wal::{SimStorage, Wal, WalError};

use common::{open_sim, payload, read_all, small_segments};

const SEGMENT_HEADER_BYTES: usize = 32;
const RECORD_HEADER_BYTES: usize = 16;

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Writes `n` records of 100 bytes in one segment and closes the log.
fn write_log(dir: &std::path::Path, n: u64) {
    let (wal, _) = Wal::open(dir, wal::WalConfig::default()).expect("open");
    for i in 0..n {
        wal.append(payload(i, 100)).wait().expect("append");
    }
    wal.close().expect("close");
}

fn record_offset(idx: usize) -> usize {
    SEGMENT_HEADER_BYTES + idx * (RECORD_HEADER_BYTES + 100)
}

#[test]
fn bit_flip_mid_log_is_reported_with_segment_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 10);
    let segment = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&segment).expect("read");
    let flipped_at = record_offset(4) + RECORD_HEADER_BYTES + 50;
    bytes[flipped_at] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("write");

    let err = Wal::open(dir.path(), wal::WalConfig::default()).expect_err("corruption detected");
    match err {
        WalError::Corrupt {
            segment: reported,
            offset,
            reason,
        } => {
            assert_eq!(reported, segment);
            assert_eq!(offset, record_offset(4) as u64);
            assert!(reason.contains("checksum"), "reason: {reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // The file was not modified by the failed open.
    assert_eq!(std::fs::read(&segment).expect("read"), bytes);
}

#[test]
fn bit_flip_in_length_field_mid_log_is_a_hard_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 10);
    let segment = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[record_offset(2)] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write");
    let err = Wal::open(dir.path(), wal::WalConfig::default()).expect_err("corruption detected");
    assert!(
        matches!(err, WalError::Corrupt { offset, .. } if offset == record_offset(2) as u64),
        "{err:?}"
    );
}

#[test]
fn garbage_appended_to_the_tail_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 10);
    let segment = segment_files(dir.path()).remove(0);
    let clean_len = std::fs::metadata(&segment).expect("meta").len();
    let garbage: Vec<u8> = (0..300u32).map(|i| (i * 37 % 256) as u8).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("open")
        .write_all(&garbage)
        .expect("write");

    let (wal, report) = Wal::open(dir.path(), wal::WalConfig::default()).expect("open truncates");
    assert_eq!(report.truncated_bytes, 300);
    assert_eq!(report.next_lsn, 11);
    assert!(
        report.truncated_records_hint.contains("cut 300 bytes"),
        "{}",
        report.truncated_records_hint
    );
    assert_eq!(std::fs::metadata(&segment).expect("meta").len(), clean_len);
    assert_eq!(wal.append(b"next".to_vec()).wait(), Ok(11));
    let records = read_all(&wal, 1);
    assert_eq!(records.len(), 11);
    assert_eq!(records[10], (11, b"next".to_vec()));
}

#[test]
fn zero_filled_tail_is_truncated() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, small_segments(1 << 20)).expect("open");
    wal.append(payload(1, 10)).wait().expect("append");
    wal.close().expect("close");
    drop(wal);
    let name = disk
        .file_names()
        .into_iter()
        .find(|n| n.ends_with(".log"))
        .expect("segment");
    let mut bytes = disk.file_bytes(&name).expect("bytes");
    bytes.extend_from_slice(&[0u8; 4096]);
    disk.set_file_bytes(&name, bytes);
    let (wal, report) = open_sim(&disk, small_segments(1 << 20)).expect("open");
    assert_eq!(report.truncated_bytes, 4096);
    assert_eq!(report.next_lsn, 2);
    assert_eq!(read_all(&wal, 1).len(), 1);
}

#[test]
fn torn_last_record_is_truncated_keeping_earlier_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 5);
    let segment = segment_files(dir.path()).remove(0);
    let len = std::fs::metadata(&segment).expect("meta").len();
    // Cut the last record in the middle of its payload.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open")
        .set_len(len - 40)
        .expect("cut");
    let (wal, report) = Wal::open(dir.path(), wal::WalConfig::default()).expect("open");
    assert_eq!(report.next_lsn, 5, "record 5 was torn");
    assert_eq!(report.truncated_bytes, 116 - 40);
    let records = read_all(&wal, 1);
    assert_eq!(records.len(), 4);
    assert_eq!(records[3], (4, payload(3, 100)));
}

#[test]
fn damaged_last_record_followed_by_a_valid_one_is_not_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 5);
    let segment = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&segment).expect("read");
    // Damage record 4 (index 3); record 5 after it is still valid.
    bytes[record_offset(3) + RECORD_HEADER_BYTES] ^= 0xFF;
    std::fs::write(&segment, &bytes).expect("write");
    let err = Wal::open(dir.path(), wal::WalConfig::default()).expect_err("mid-log corruption");
    match err {
        WalError::Corrupt { offset, reason, .. } => {
            assert_eq!(offset, record_offset(3) as u64);
            assert!(reason.contains("valid record"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// A closed log of 20 records of 100 bytes in 512-byte segments, with its segment file names
/// in order.
fn twenty_records_in_small_segments() -> (Arc<SimStorage>, wal::WalConfig, Vec<String>) {
    let disk = Arc::new(SimStorage::new());
    let config = small_segments(512);
    let (wal, _) = open_sim(&disk, config.clone()).expect("open");
    for i in 0..20 {
        wal.append(payload(i, 100)).wait().expect("append");
    }
    wal.close().expect("close");
    drop(wal);
    let names: Vec<String> = disk.file_names().into_iter().filter(|n| n.ends_with(".log")).collect();
    (disk, config, names)
}

#[test]
fn damage_in_a_non_last_segment_is_a_hard_error() {
    let (disk, config, names) = twenty_records_in_small_segments();
    assert!(names.len() >= 3);
    // Cut the tail of the first segment: a torn record there is not a torn tail of the log.
    let mut bytes = disk.file_bytes(&names[0]).expect("bytes");
    bytes.truncate(bytes.len() - 10);
    disk.set_file_bytes(&names[0], bytes.clone());
    let err = open_sim(&disk, config).expect_err("corrupt");
    match err {
        WalError::Corrupt { segment, offset, .. } => {
            assert!(segment.ends_with(&names[0]), "{segment:?}");
            assert_eq!(offset, (bytes.len() + 10 - 116) as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn missing_middle_segment_is_an_lsn_gap() {
    let (disk, config, names) = twenty_records_in_small_segments();
    use wal::Storage;
    disk.remove(&names[1]).expect("remove");
    let err = open_sim(&disk, config).expect_err("gap");
    match err {
        WalError::Corrupt {
            segment,
            offset,
            reason,
        } => {
            assert!(segment.ends_with(&names[2]), "{segment:?}");
            assert_eq!(offset, 0);
            assert!(reason.contains("LSN gap"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn bad_segment_header_is_a_hard_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path(), 3);
    let segment = segment_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&segment).expect("read");
    bytes[0] = b'X';
    std::fs::write(&segment, &bytes).expect("write");
    let err = Wal::open(dir.path(), wal::WalConfig::default()).expect_err("bad magic");
    assert!(
        matches!(err, WalError::Corrupt { offset: 0, ref reason, .. } if reason.contains("magic")),
        "{err:?}"
    );
}

#[test]
fn reader_reports_damage_that_appears_after_open() {
    let disk = Arc::new(SimStorage::new());
    let (wal, _) = open_sim(&disk, small_segments(1 << 20)).expect("open");
    for i in 0..5 {
        wal.append(payload(i, 100)).wait().expect("append");
    }
    let name = disk
        .file_names()
        .into_iter()
        .find(|n| n.ends_with(".log"))
        .expect("segment");
    let mut bytes = disk.file_bytes(&name).expect("bytes");
    bytes[record_offset(2) + RECORD_HEADER_BYTES + 1] ^= 0x04;
    disk.set_file_bytes(&name, bytes);

    let results: Vec<_> = wal.read_from(1).expect("reader").collect();
    assert_eq!(results.len(), 3, "two records, then the error, then the iterator ends");
    assert_eq!(results[1].as_ref().map(|(lsn, _)| *lsn), Ok(2));
    match &results[2] {
        Err(WalError::Corrupt { segment, offset, .. }) => {
            assert!(segment.ends_with(&name));
            assert_eq!(*offset, record_offset(2) as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
