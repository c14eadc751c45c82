//! Helpers shared by the integration tests: small configurations and record generators.
#![allow(dead_code)]

use std::sync::Arc;

use wal::{Lsn, SimStorage, SyncPolicy, Wal, WalConfig, WalError};

/// A config with small segments so that tests roll segments often.
pub fn small_segments(segment_size_bytes_max: u64) -> WalConfig {
    WalConfig {
        segment_size_bytes_max,
        ..WalConfig::default()
    }
}

/// A deterministic payload for record `seed` of `len` bytes.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

/// Opens a log on a simulated disk.
pub fn open_sim(storage: &Arc<SimStorage>, config: WalConfig) -> Result<(Wal, wal::OpenReport), WalError> {
    let storage: Arc<dyn wal::Storage> = Arc::clone(storage) as Arc<dyn wal::Storage>;
    Wal::open_with_storage(storage, config)
}

/// Reads every durable record from `from`.
pub fn read_all(wal: &Wal, from: Lsn) -> Vec<(Lsn, Vec<u8>)> {
    wal.read_from(from)
        .expect("read_from")
        .collect::<Result<Vec<_>, _>>()
        .expect("records read")
}

/// The policy used by most tests.
pub fn always() -> WalConfig {
    WalConfig {
        sync: SyncPolicy::Always,
        ..WalConfig::default()
    }
}
