//! The replay fold: the newest snapshot plus every record after it, folded with the same
//! `EngineState::apply` whatever asks for it: recovery (to rebuild the actors), the snapshot
//! builder (to write the next snapshot) and `Engine::replay_state` (tests comparing replay
//! with live running).

use super::error::OpenError;
use super::idempotency::{IdempotencyLimits, Table};
use crate::codec;
use crate::domain::{EngineState, Record};
use std::time::{Duration, Instant};

/// Newest valid snapshot plus every record after it. Logs progress for long replays. The
/// idempotent responses are folded into a table with `limits` and returned in
/// `state.idempotency`, pruned to the retention as of the newest record.
pub(crate) fn fold_log(wal: &wal::Wal, limits: IdempotencyLimits) -> Result<(EngineState, u64), OpenError> {
    let mut state = snapshot_state(wal)?;
    let (mut idempotency, mut evicted_early) = Table::from_map(std::mem::take(&mut state.idempotency), limits);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut n = 0u64;
    // Two stages on two threads: this one applies (it must, in LSN order, on one state); a
    // reader reads, checks and decodes the next records meanwhile. Decoding is about 40 % of
    // a record's cost, so the overlap shortens recovery on a machine with a spare core. The
    // bounded channel keeps the reader at most a few batches ahead.
    let from = state.next_lsn;
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<(u64, Record)>, OpenError>>(4);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("oms-replay-decode".into())
            .spawn_scoped(scope, move || decode_records(wal, from, &tx))
            .map_err(|e| OpenError::ReplayThread(std::sync::Arc::new(e)))?;
        for batch in rx {
            for (lsn, mut record) in batch? {
                // The idempotent response goes to the table that owns its retention and bounds.
                if let Some(response) = record.idempotency.take() {
                    evicted_early += idempotency.insert(response);
                }
                state.apply(lsn, record);
                n += 1;
            }
            if last_report.elapsed() >= Duration::from_secs(2) {
                let rate = n as f64 / started.elapsed().as_secs_f64();
                tracing::info!(
                    records = n,
                    lsn = state.next_lsn - 1,
                    records_per_s = rate as u64,
                    "replaying the log"
                );
                last_report = Instant::now();
            }
        }
        Ok::<(), OpenError>(())
    })?;
    if evicted_early > 0 {
        tracing::warn!(
            evicted_early,
            keys_max = limits.keys_max,
            bytes_max = limits.bytes_max,
            "idempotency table full during replay: responses younger than 24 h were forgotten"
        );
    }
    idempotency.prune(state.last_at);
    state.idempotency = idempotency.into_map();
    Ok((state, n))
}

/// The newest valid snapshot's state, or the empty state when there is none: where a fold
/// of the log starts.
pub(crate) fn snapshot_state(wal: &wal::Wal) -> Result<EngineState, OpenError> {
    Ok(match wal.load_latest_snapshot()? {
        Some((next_lsn, blob)) => {
            let s = codec::decode_snapshot(&blob).map_err(|source| OpenError::Snapshot { next_lsn, source })?;
            assert_eq!(s.next_lsn, next_lsn, "snapshot tag and content disagree");
            s
        }
        None => EngineState::new(),
    })
}

/// The replay's reader stage: reads, checks and decodes the records from `from` on and sends
/// them in batches; an error arrives after the records before it, and ends the stage.
fn decode_records(wal: &wal::Wal, from: u64, tx: &crossbeam_channel::Sender<Result<Vec<(u64, Record)>, OpenError>>) {
    const BATCH: usize = 256;
    let records = match wal.read_from(from) {
        Ok(records) => records,
        Err(e) => {
            let _ = tx.send(Err(e.into()));
            return;
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    for item in records {
        let decoded = item.map_err(OpenError::from).and_then(|(lsn, bytes)| {
            codec::decode_record(&bytes)
                .map(|record| (lsn, record))
                .map_err(|source| OpenError::Record { lsn, source })
        });
        match decoded {
            Ok(r) => batch.push(r),
            Err(e) => {
                // What was decoded before the error is applied first.
                let _ = tx.send(Ok(std::mem::take(&mut batch)));
                let _ = tx.send(Err(e));
                return;
            }
        }
        if batch.len() == BATCH
            && tx
                .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                .is_err()
        {
            return; // the applier stopped
        }
    }
    let _ = tx.send(Ok(batch));
}
