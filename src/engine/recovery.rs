//! Opening the data directory: the lock, the log, recovery (newest snapshot + replay of the log
//! after it) and the start of the background tasks (expiry, in `expiry.rs`; snapshots;
//! settling payments left open by a crash).

use super::expiry::Expiry;
use super::feed::{Feed, Indexes};
use super::orders::{Internal, OrderCell, OrderMsg};
use super::pairs::Pair;
use super::{Clock, Core, Counters, Engine, EngineConfig, EngineError, ORDER_SHARDS, PairRegistry, PaymentGateway};
use crate::codec;
use crate::domain::order::{AttemptStatus, RefundStatus};
use crate::domain::{EngineState, OrderStatus, Record};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) async fn open(
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
) -> Result<Engine, EngineError> {
    let started = Instant::now();
    let dir = config.data_dir.clone();
    let (lock, wal) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
            let display = dir.display().to_string();
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::Open(format!("cannot create {display}: {e}")))?;
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("LOCK"))
                .map_err(|e| EngineError::Open(format!("cannot write to {display}: {e}")))?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(EngineError::Locked(display)),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(EngineError::Open(format!("cannot lock {display}/LOCK: {e}")));
                }
            }
            let opened = match &config.storage {
                Some(s) => wal::Wal::open_with_storage(s.clone(), config.wal.clone()),
                None => wal::Wal::open(&dir.join("wal"), config.wal.clone()),
            };
            let (wal, report) = opened.map_err(|e| EngineError::Open(e.to_string()))?;
            if report.truncated_bytes > 0 {
                tracing::warn!(bytes = report.truncated_bytes, what = %report.truncated_records_hint, "truncated a torn log tail");
            }
            Ok((lock, wal))
        })
        .await
        .map_err(|e| EngineError::Open(e.to_string()))??
    };
    let (state, replayed) = {
        let wal = wal.clone();
        tokio::task::spawn_blocking(move || fold_log(&wal))
            .await
            .map_err(|e| EngineError::Open(e.to_string()))??
    };
    state
        .check_invariants()
        .map_err(|e| EngineError::Open(format!("recovered state breaks an invariant: {e}")))?;
    let recovery_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        records = replayed,
        orders = state.orders.len(),
        pairs = state.inventory.len(),
        recovery_ms,
        "recovered"
    );

    let core = Arc::new(build_core(config, wal, clock, gateway, state));
    core.counters.recovery_ms.store(recovery_ms, Ordering::Relaxed);
    core.counters.recovered_records.store(replayed, Ordering::Relaxed);
    tokio::spawn(super::expiry::run(Arc::downgrade(&core)));
    tokio::spawn(super::snapshot::snapshot_loop(Arc::downgrade(&core)));
    settle_open_payments(&core);
    Ok(Engine {
        core,
        _lock: Arc::new(lock),
    })
}

/// Newest valid snapshot plus every record after it. Logs progress for long replays.
pub(crate) fn fold_log(wal: &wal::Wal) -> Result<(EngineState, u64), EngineError> {
    let mut state = match wal
        .load_latest_snapshot()
        .map_err(|e| EngineError::Open(e.to_string()))?
    {
        Some((next_lsn, blob)) => {
            let s =
                codec::decode_snapshot(&blob).map_err(|e| EngineError::Open(format!("snapshot at {next_lsn}: {e}")))?;
            assert_eq!(s.next_lsn, next_lsn, "snapshot tag and content disagree");
            s
        }
        None => EngineState::new(),
    };
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut n = 0u64;
    // Two stages on two threads: this one applies (it must, in LSN order, on one state); a
    // reader reads, checks and decodes the next records meanwhile. Decoding is about 40 % of
    // a record's cost, so the overlap shortens recovery on a machine with a spare core. The
    // bounded channel keeps the reader at most a few batches ahead.
    const BATCH: usize = 256;
    let from = state.next_lsn;
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<(u64, Record)>, EngineError>>(4);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("oms-replay-decode".into())
            .spawn_scoped(scope, move || {
                let records = match wal.read_from(from) {
                    Ok(records) => records,
                    Err(e) => {
                        let _ = tx.send(Err(EngineError::Open(e.to_string())));
                        return;
                    }
                };
                let mut batch = Vec::with_capacity(BATCH);
                for item in records {
                    let decoded = item
                        .map_err(|e| EngineError::Open(e.to_string()))
                        .and_then(|(lsn, bytes)| {
                            codec::decode_record(&bytes)
                                .map(|record| (lsn, record))
                                .map_err(|e| EngineError::Open(format!("record {lsn}: {e}")))
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
            })
            .map_err(|e| EngineError::Open(format!("cannot start the replay reader: {e}")))?;
        for batch in rx {
            for (lsn, record) in batch? {
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
        Ok::<(), EngineError>(())
    })?;
    Ok((state, n))
}

fn build_core(
    config: EngineConfig,
    wal: wal::Wal,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
    state: EngineState,
) -> Core {
    let mut indexes = Indexes::default();
    let mut orders: Vec<crate::domain::FastMap<_, _>> = (0..ORDER_SHARDS).map(|_| Default::default()).collect();
    let mut expiry = Vec::new();
    let mut ids: Vec<_> = state.orders.keys().copied().collect();
    ids.sort();
    let mut state = state;
    for id in ids {
        let order = state.orders.remove(&id).expect("listed above");
        indexes.insert(order.id, &order.user_id, order.status);
        if order.status == OrderStatus::PaymentPending {
            expiry.push((order.id, order.reservation_expires_at));
        }
        orders[(id.0 as usize) % ORDER_SHARDS].insert(id, Arc::new(OrderCell::new(order)));
    }
    let mut pairs = PairRegistry::default();
    for ((sku, wh), inv) in state.inventory {
        let p = Arc::new(Pair::new(sku.clone(), wh.clone(), inv));
        pairs.by_sku.entry(sku.clone()).or_default().push(p.clone());
        pairs.by_key.insert((sku, wh), p);
    }
    Core {
        feed: Feed::new(state.next_lsn, config.feed_capacity, indexes),
        config,
        wal,
        clock,
        gateway,
        pairs: RwLock::new(pairs),
        orders: orders.into_iter().map(RwLock::new).collect(),
        warehouses: RwLock::new(state.warehouses),
        warehouse_write: tokio::sync::Mutex::new(()),
        idempotency: Mutex::new(state.idempotency),
        idem_inflight: Mutex::new(HashMap::new()),
        next_order_seq: AtomicU64::new(state.last_order_seq + 1),
        expiry: Expiry::new(expiry),
        counters: Counters::default(),
        closed: AtomicBool::new(false),
        dead_actors: Arc::new(AtomicU64::new(0)),
    }
}

/// Orders whose payment or refund outcome never reached the log get it settled now.
fn settle_open_payments(core: &Arc<Core>) {
    let mut open = Vec::new();
    for shard in &core.orders {
        for cell in shard.read().values() {
            let pending = cell.peek(|o| {
                o.payment.attempts.iter().any(|a| a.status == AttemptStatus::Pending)
                    || o.refunds.iter().any(|r| r.status == RefundStatus::Pending)
            });
            if pending == Some(true) {
                open.push(cell.clone());
            }
        }
    }
    for cell in open {
        let core = core.clone();
        tokio::spawn(async move {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let msg = OrderMsg::Request {
                request: Internal::Resolve,
                idem: None,
                reply,
            };
            if core.to_order(&cell, msg).await.is_ok() {
                match rx.await {
                    Ok(Ok(_)) => tracing::info!(order = %cell.id, "settled a payment left open by a restart"),
                    Ok(Err(e)) => tracing::warn!(order = %cell.id, error = %e, "could not settle an open payment yet"),
                    Err(_) => {}
                }
            }
        });
    }
}
