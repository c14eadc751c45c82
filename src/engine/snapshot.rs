//! Snapshots, built off to the side: the builder loads the newest snapshot, folds the durable
//! log after it with the same `apply` recovery uses, and writes the result. The actors never
//! pause for it (the price is one core for the fold and a transient second copy of the state),
//! and the snapshot is consistent by construction: it is exactly the fold of a log prefix.

use super::core::Core;
use super::error::{EngineError, Unavailable};
use super::replay::fold_log;
use super::subscriber;
use crate::codec;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Builds and writes a snapshot of everything durable now; returns the LSN it covers up to
/// (exclusive).
pub(crate) fn take(core: &Core) -> Result<u64, EngineError> {
    let started = Instant::now();
    let (state, n) = fold_log(&core.wal, core.config.idempotency).map_err(EngineError::Open)?;
    if n == 0 {
        return Ok(state.next_lsn);
    }
    let blob = codec::encode_snapshot(&state);
    let retained = core
        .wal
        .write_snapshot_retaining(state.next_lsn, &blob, subscriber::retain(core))
        .map_err(Unavailable::Snapshot)?;
    subscriber::report_retention(core, retained);
    core.counters.snapshots_taken.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        next_lsn = state.next_lsn,
        folded_records = n,
        bytes = blob.len(),
        ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    Ok(state.next_lsn)
}

/// Takes a snapshot every `snapshot_every_records` records or `snapshot_every_ms`, whichever
/// comes first (and only if something was logged since the last one).
pub(crate) async fn snapshot_loop(core: Weak<Core>) {
    let mut last_lsn = match core.upgrade() {
        Some(c) => c.wal.durable_lsn(),
        None => return,
    };
    // Tokio's clock (the same as the OS clock, but tests can pause and advance it).
    let mut last_at = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = core.upgrade() else { return };
        if c.closed.load(Ordering::Acquire) || c.wal.poisoned().is_some() {
            return;
        }
        let durable = c.wal.durable_lsn();
        let due_records = durable.saturating_sub(last_lsn) >= c.config.snapshot_every_records;
        let due_time = durable > last_lsn && last_at.elapsed() >= Duration::from_millis(c.config.snapshot_every_ms);
        if !(due_records || due_time) {
            continue;
        }
        let worker = c.clone();
        match tokio::task::spawn_blocking(move || take(&worker)).await {
            Ok(Ok(lsn)) => last_lsn = lsn.saturating_sub(1),
            Ok(Err(e)) => tracing::error!(error = %e, "snapshot failed"),
            Err(e) => tracing::error!(error = %e, "snapshot task panicked"),
        }
        last_at = tokio::time::Instant::now();
    }
}
