//! Opening the data directory: the lock, the log, recovery (newest snapshot + replay of the log
//! after it, `replay.rs`), the registries of actors built from the recovered state, and the
//! start of the background tasks (expiry, snapshots, the payment settler).

use super::clock::Clock;
use super::config::EngineConfig;
use super::core::{Core, Counters};
use super::error::{EngineError, OpenError};
use super::expiry::queue::Expiry;
use super::feed::{Feed, FeedLimits, Indexes};
use super::gateway::PaymentGateway;
use super::idempotency::Idempotency;
use super::orders::Orders;
use super::pairs::Pairs;
use super::replay::fold_log;
use super::sales::registry::SaleRegistry;
use super::subscriber::registry::Subscribers;
use super::{expiry, sales, settler, snapshot};
use crate::domain::stock_changes::StockFigures;
use crate::domain::{EngineState, OrderStatus};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// A file written into the data directory once its log exists, durably (temp file, fsync,
/// rename, directory fsync). From then on the log must be there: a data directory with this
/// file and no log is refused instead of silently given an empty log.
pub(crate) const MARKER_FILE: &str = "IDENTITY";

/// A recovered engine: its core, its registries of actors (every actor idle) and the data
/// directory's lock, held as long as the engine lives.
pub(crate) struct Recovered {
    pub(crate) core: Arc<Core>,
    pub(crate) pairs: Arc<Pairs>,
    pub(crate) orders: Arc<Orders>,
    pub(crate) lock: std::fs::File,
}

/// Opens the data directory, recovers, and starts the background tasks.
pub(crate) async fn open(
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
) -> Result<Recovered, EngineError> {
    let started = Instant::now();
    let (lock, wal, subscribers) = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_dir(&config))
            .await
            .map_err(|e| OpenError::task("open", &e))??
    };
    let limits = config.idempotency;
    let (state, replayed) = {
        let wal = wal.clone();
        tokio::task::spawn_blocking(move || fold_log(&wal, limits))
            .await
            .map_err(|e| OpenError::task("replay", &e))??
    };
    // Appends continue where the replay ended: a log position is never given twice.
    if state.next_lsn != wal.next_lsn() {
        let (state_end, log_next) = (state.next_lsn - 1, wal.next_lsn());
        return Err(OpenError::PositionMismatch { state_end, log_next }.into());
    }
    state.check_invariants().map_err(OpenError::from)?;
    let recovery_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        records = replayed,
        orders = state.orders.len(),
        pairs = state.inventory.len(),
        recovery_ms,
        "recovered"
    );

    let (core, pairs, orders) = build(config, wal, subscribers, clock, gateway, state);
    core.counters.recovery_ms.store(recovery_ms, Ordering::Relaxed);
    core.counters.recovered_records.store(replayed, Ordering::Relaxed);
    tokio::spawn(expiry::run(Arc::downgrade(&orders)));
    tokio::spawn(snapshot::snapshot_loop(Arc::downgrade(&core)));
    tokio::spawn(sales::run_clock(Arc::downgrade(&core)));
    settler::start(&orders);
    Ok(Recovered {
        core,
        pairs,
        orders,
        lock,
    })
}

/// Creates the data directory (durably), takes its lock, opens the log and loads the log
/// subscribers' positions; a directory that was used before (it has the marker file) must
/// still have its log. Blocking.
fn open_dir(config: &EngineConfig) -> Result<(std::fs::File, wal::Wal, Subscribers), EngineError> {
    let dir = &config.data_dir;
    let io = |e| Arc::new(e);
    wal::create_dir_durable(dir).map_err(|e| OpenError::CreateDir {
        path: dir.clone(),
        source: io(e),
    })?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(|e| OpenError::LockFile {
            path: dir.clone(),
            source: io(e),
        })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(EngineError::Locked(dir.clone())),
        Err(std::fs::TryLockError::Error(e)) => {
            let dir = dir.clone();
            return Err(OpenError::Lock { dir, source: io(e) }.into());
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
        wal::WalError::LogMissing { .. } if used => OpenError::LogLost {
            marker: marker.clone(),
            source: e,
        },
        e => OpenError::Log(e),
    })?;
    if report.truncated_bytes > 0 {
        tracing::warn!(bytes = report.truncated_bytes, what = %report.truncated_records_hint, "truncated a torn log tail");
    }
    if !used {
        write_marker(dir).map_err(|e| OpenError::Marker {
            path: marker.clone(),
            source: io(e),
        })?;
    }
    let subscribers = Subscribers::load(dir, config.subscriber_retention_bytes_max).map_err(OpenError::from)?;
    Ok((lock, wal, subscribers))
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

/// The core and the registries of a recovered state: every pair and order starts idle, the
/// feed at the next LSN, expiry armed for every `payment_pending` order.
fn build(
    config: EngineConfig,
    wal: wal::Wal,
    subscribers: Subscribers,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
    mut state: EngineState,
) -> (Arc<Core>, Arc<Pairs>, Arc<Orders>) {
    let mut indexes = Indexes::default();
    let mut expiry = Vec::new();
    let mut ids: Vec<_> = state.orders.keys().copied().collect();
    ids.sort();
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        let order = state.orders.remove(&id).expect("listed above");
        indexes.insert(&order);
        if order.status == OrderStatus::PaymentPending {
            expiry.push((order.id, order.reservation_expires_at));
        }
        orders.push(order);
    }
    let idempotency = Idempotency::new(std::mem::take(&mut state.idempotency), config.idempotency, clock.now());
    let figures = StockFigures::of_inventory(&state.inventory);
    let sales = std::mem::take(&mut state.sales);
    let feed_limits = FeedLimits {
        records_max: config.feed_capacity,
        bytes_max: config.feed_bytes_max,
        replays_max: config.stream_replays_max,
    };
    let core = Arc::new(Core {
        feed: Feed::new(state.next_lsn, feed_limits, indexes, figures),
        config,
        wal,
        clock,
        gateway,
        warehouses: RwLock::new(state.warehouses),
        warehouse_write: tokio::sync::Mutex::new(()),
        idempotency: Arc::new(idempotency),
        next_order_seq: AtomicU64::new(state.last_order_seq + 1),
        expiry: Expiry::new(expiry),
        settler: Default::default(),
        subscribers,
        counters: Counters::default(),
        sales: Arc::new(SaleRegistry::new(sales)),
        closed: AtomicBool::new(false),
        dead_actors: Arc::new(AtomicU64::new(0)),
    });
    let pairs = Arc::new(Pairs::new(core.clone(), state.inventory));
    let orders = Arc::new(Orders::new(core.clone(), pairs.clone(), orders));
    (core, pairs, orders)
}
