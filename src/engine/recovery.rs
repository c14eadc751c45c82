//! Opening the data directory: the lock, the log, recovery (newest snapshot + replay of the log
//! after it) and the start of the background tasks (expiry, in `expiry.rs`; snapshots; the
//! payment settler).

use super::expiry::Expiry;
use super::feed::{Feed, FeedLimits, Indexes};
use super::idempotency::{Idempotency, Table};
use super::orders::OrderCell;
use super::pairs::Pair;
use super::{Clock, Core, Counters, Engine, EngineConfig, EngineError, ORDER_SHARDS, PairRegistry, PaymentGateway};
use crate::codec;
use crate::domain::{EngineState, OrderStatus, Record};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A file written into the data directory once its log exists, durably (temp file, fsync,
/// rename, directory fsync). From then on the log must be there: a data directory with this
/// file and no log is refused instead of silently given an empty log.
pub(crate) const MARKER_FILE: &str = "IDENTITY";

pub(crate) async fn open(
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
) -> Result<Engine, EngineError> {
    let started = Instant::now();
    let (lock, wal) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_dir(&config))
            .await
            .map_err(|e| EngineError::Open(e.to_string()))??
    };
    let limits = config.idempotency;
    let (state, replayed) = {
        let wal = wal.clone();
        tokio::task::spawn_blocking(move || fold_log(&wal, limits))
            .await
            .map_err(|e| EngineError::Open(e.to_string()))??
    };
    // Appends continue where the replay ended: a log position is never given twice.
    if state.next_lsn != wal.next_lsn() {
        return Err(EngineError::Open(format!(
            "the recovered state ends at LSN {} but the log continues at LSN {}; refusing to reuse log positions",
            state.next_lsn - 1,
            wal.next_lsn()
        )));
    }
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
    super::settler::start(&core);
    Ok(Engine {
        core,
        _lock: Arc::new(lock),
    })
}

/// Creates the data directory (durably), takes its lock and opens the log; a directory that
/// was used before (it has the marker file) must still have its log. Blocking.
fn open_dir(config: &EngineConfig) -> Result<(std::fs::File, wal::Wal), EngineError> {
    let dir = &config.data_dir;
    let display = dir.display().to_string();
    wal::create_dir_durable(dir).map_err(|e| EngineError::Open(format!("cannot create {display}: {e}")))?;
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
    let marker = dir.join(MARKER_FILE);
    let used = marker.exists();
    let wal_config = wal::WalConfig {
        create_if_missing: !used,
        ..config.wal.clone()
    };
    let opened = match &config.storage {
        Some(s) => wal::Wal::open_with_storage(s.clone(), wal_config),
        None => wal::Wal::open(&dir.join("wal"), wal_config),
    };
    let (wal, report) = opened.map_err(|e| match e {
        wal::WalError::LogMissing { .. } if used => EngineError::Open(format!(
            "{e}: {} says this data directory was used before; restore its log, or move the directory away to start empty",
            marker.display()
        )),
        e => EngineError::Open(e.to_string()),
    })?;
    if report.truncated_bytes > 0 {
        tracing::warn!(bytes = report.truncated_bytes, what = %report.truncated_records_hint, "truncated a torn log tail");
    }
    if !used {
        write_marker(dir).map_err(|e| EngineError::Open(format!("cannot write {}: {e}", marker.display())))?;
    }
    Ok((lock, wal))
}

/// Writes the marker file durably: temp file, fsync, rename, directory fsync.
fn write_marker(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let temp = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(b"oms data directory: its log must exist from now on\n")?;
    file.sync_all()?;
    std::fs::rename(&temp, dir.join(MARKER_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Newest valid snapshot plus every record after it. Logs progress for long replays. The
/// idempotent responses are folded into a table with `limits` and returned in
/// `state.idempotency`, pruned to the retention as of the newest record.
pub(crate) fn fold_log(wal: &wal::Wal, limits: super::IdempotencyLimits) -> Result<(EngineState, u64), EngineError> {
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
    let (mut idempotency, mut evicted_early) = Table::from_map(std::mem::take(&mut state.idempotency), limits);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut n = 0u64;
    // Two stages on two threads: this one applies (it must, in LSN order, on one state); a
    // reader reads, checks and decodes the next records meanwhile. Decoding is about 40 % of
    // a record's cost, so the overlap shortens recovery on a machine with a spare core. The
    // bounded channel keeps the reader at most a few batches ahead.
    let from = state.next_lsn;
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<(u64, Record)>, EngineError>>(4);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("oms-replay-decode".into())
            .spawn_scoped(scope, move || decode_records(wal, from, &tx))
            .map_err(|e| EngineError::Open(format!("cannot start the replay reader: {e}")))?;
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
        Ok::<(), EngineError>(())
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

/// The replay's reader stage: reads, checks and decodes the records from `from` on and sends
/// them in batches; an error arrives after the records before it, and ends the stage.
fn decode_records(wal: &wal::Wal, from: u64, tx: &crossbeam_channel::Sender<Result<Vec<(u64, Record)>, EngineError>>) {
    const BATCH: usize = 256;
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
    let idempotency = Idempotency::new(std::mem::take(&mut state.idempotency), config.idempotency, clock.now());
    let mut pairs = PairRegistry::default();
    for ((sku, wh), inv) in state.inventory {
        let p = Arc::new(Pair::new(sku.clone(), wh.clone(), inv));
        pairs.by_sku.entry(sku.clone()).or_default().push(p.clone());
        pairs.by_key.insert((sku, wh), p);
    }
    Core {
        feed: Feed::new(
            state.next_lsn,
            FeedLimits {
                records_max: config.feed_capacity,
                bytes_max: config.feed_bytes_max,
                replays_max: config.stream_replays_max,
            },
            indexes,
        ),
        config,
        wal,
        clock,
        gateway,
        pairs: RwLock::new(pairs),
        orders: orders.into_iter().map(RwLock::new).collect(),
        warehouses: RwLock::new(state.warehouses),
        warehouse_write: tokio::sync::Mutex::new(()),
        idempotency: Arc::new(idempotency),
        next_order_seq: AtomicU64::new(state.last_order_seq + 1),
        expiry: Expiry::new(expiry),
        settler: Default::default(),
        counters: Counters::default(),
        closed: AtomicBool::new(false),
        dead_actors: Arc::new(AtomicU64::new(0)),
    }
}
