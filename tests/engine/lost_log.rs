//! A data directory whose log lost records is refused instead of recovered into something
//! else: a log that ends before the newest snapshot (its positions would be reused and later
//! records vanish on the next recovery), and a used directory whose log is gone (an empty log
//! would silently replace it). Both on a real directory and through the log's storage seam.

use crate::support::*;
use oms::engine::{Engine, EngineError, ManualClock, SimulatedGateway};
use std::sync::Arc;
use wal::SimStorage;

async fn open(dir: &std::path::Path, storage: Option<Arc<dyn wal::Storage>>) -> Result<Engine, EngineError> {
    let cfg = config(dir, storage);
    Engine::open(
        cfg,
        Arc::new(ManualClock::new(T0)),
        Arc::new(SimulatedGateway::default()),
    )
    .await
}

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn first_lsn_of(segment: &std::path::Path) -> u64 {
    let name = segment.file_name().unwrap().to_str().unwrap();
    name["wal-".len()..name.len() - ".log".len()].parse().unwrap()
}

#[tokio::test]
async fn a_log_cut_short_behind_its_snapshot_is_refused_naming_both_positions() {
    let h = Harness::with_config(|c| c.wal.segment_size_bytes_max = 1024).await;
    h.one_warehouse(&[]).await;
    for i in 0..40 {
        h.stock(&format!("sku-{i}"), "w", 5).await;
    }
    let e = h.engine.clone();
    let covered = tokio::task::spawn_blocking(move || e.snapshot_now())
        .await
        .unwrap()
        .unwrap()
        - 1;
    assert_eq!(covered, 41, "the snapshot covers every record");
    h.engine.shutdown().await.unwrap();
    let dir = h.dir;
    drop(h.engine);
    // The newest segment loses its records (a faulty disk, a mistaken clean-up): the log now
    // ends before the snapshot.
    let newest = segment_files(dir.path()).pop().unwrap();
    let log_end = first_lsn_of(&newest) - 1;
    assert!(log_end < covered);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(32)
        .unwrap();

    for _ in 0..2 {
        let err = open(dir.path(), None)
            .await
            .err()
            .expect("a log behind its snapshot is refused");
        let message = err.to_string();
        assert!(
            message.contains(&format!("LSN {covered}")) && message.contains(&format!("LSN {log_end}")),
            "{message}"
        );
        // Refused before anything was written: no record took a lost position.
        assert_eq!(std::fs::metadata(&newest).unwrap().len(), 32);
        assert!(segment_files(dir.path()).iter().all(|s| first_lsn_of(s) <= log_end + 1));
    }
}

#[tokio::test]
async fn a_used_data_directory_whose_log_is_gone_is_refused() {
    let h = Harness::new().await;
    h.one_warehouse(&[("a", 5)]).await;
    assert!(
        h.dir.path().join("IDENTITY").is_file(),
        "the first boot marks the directory"
    );
    h.engine.shutdown().await.unwrap();
    let dir = h.dir;
    drop(h.engine);
    std::fs::remove_dir_all(dir.path().join("wal")).unwrap();

    let err = open(dir.path(), None).await.err().expect("a lost log is refused");
    let message = err.to_string();
    assert!(
        message.contains("no log segment") && message.contains("IDENTITY"),
        "{message}"
    );
    assert!(segment_files(dir.path()).is_empty(), "no empty log was started");
}

/// The same through the storage seam: the log lives on a simulated disk, and the disk is
/// replaced by an empty one (a lost volume) under a data directory that was used.
#[tokio::test]
async fn a_used_data_directory_on_an_empty_disk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SimStorage::new());
    let engine = open(dir.path(), Some(disk.clone())).await.unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    let err = open(dir.path(), Some(Arc::new(SimStorage::new())))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no log segment"), "{err}");
    // The disk that holds the log still opens.
    let engine = open(dir.path(), Some(disk)).await.unwrap();
    engine.shutdown().await.unwrap();
}

/// Through the seam, a snapshot whose log was cut behind it: refused, with both positions.
#[tokio::test]
async fn a_simulated_log_cut_behind_its_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SimStorage::new());
    let engine = open(dir.path(), Some(disk.clone())).await.unwrap();
    let h = Harness {
        engine,
        clock: ManualClock::new(T0),
        gateway: SimulatedGateway::default(),
        dir,
        tweak: |_| {},
    };
    h.one_warehouse(&[("a", 5), ("b", 5)]).await;
    let e = h.engine.clone();
    let next = tokio::task::spawn_blocking(move || e.snapshot_now())
        .await
        .unwrap()
        .unwrap();
    h.engine.shutdown().await.unwrap();
    drop(h.engine);
    let segment = disk.file_names().into_iter().find(|n| n.ends_with(".log")).unwrap();
    let header = disk.file_bytes(&segment).unwrap()[..32].to_vec();
    disk.set_file_bytes(&segment, header);
    let err = open(h.dir.path(), Some(disk)).await.err().expect("refused");
    assert!(
        err.to_string().contains(&format!("LSN {}", next - 1)) && err.to_string().contains("LSN 0"),
        "{err}"
    );
}
