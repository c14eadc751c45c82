//! The simulated world one seed runs in: the engine on simulated storage (`wal::SimStorage`,
//! which keeps only what was synced when it crashes), a manual clock, the simulated gateway
//! (an outside service: it outlives every crash of the engine), and the engine's bounds made
//! small so that mailboxes fill and actors passivate between messages.

use crate::support::{T0, key};
use oms::engine::{Engine, EngineConfig, ManualClock, SimulatedGateway, WarehouseInput};
use std::sync::Arc;
use std::time::Duration;
use wal::{CrashMode, SimStorage};

/// The engine's bounds for one seed, drawn from it.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    pub mailbox_capacity: usize,
    pub mailbox_wait_ms: u64,
    pub passivate_after_ms: u64,
    pub order_passivate_after_ms: u64,
    pub gateway_timeout_ms: u64,
}

pub const SKUS: [&str; 3] = ["s0", "s1", "s2"];
pub const WAREHOUSES: [&str; 2] = ["w0", "w1"];

pub struct World {
    pub engine: Engine,
    pub storage: Arc<SimStorage>,
    pub clock: ManualClock,
    pub gateway: SimulatedGateway,
    knobs: Knobs,
    /// The data directory of this incarnation (lock and marker files; the log is in `storage`).
    _dir: tempfile::TempDir,
    pub incarnations: u32,
}

/// Failed starts tolerated in a row (injected I/O errors fire once each; the seed arms few).
const OPEN_FAILURES_MAX: u32 = 8;

/// Longest wait for background work (expiry, settlement) a clock move started.
const QUIESCE_WAIT: Duration = Duration::from_secs(30);

impl World {
    pub async fn open(knobs: Knobs) -> World {
        let clock = ManualClock::new(T0);
        let gateway = SimulatedGateway::default();
        let storage = Arc::new(SimStorage::new());
        let (engine, dir) = start(knobs, &storage, &clock, &gateway).await.expect("first open");
        let w = World {
            engine,
            storage,
            clock,
            gateway,
            knobs,
            _dir: dir,
            incarnations: 1,
        };
        for (i, id) in WAREHOUSES.iter().enumerate() {
            let input = WarehouseInput {
                id: key(id),
                name: id.to_string(),
                country: "US".into(),
                lat: Some(i as f64 * 5.0),
                lon: Some(0.0),
                priority: i as i64,
                carrier: None,
            };
            w.engine.upsert_warehouse(input, None).await.expect("warehouse");
        }
        w
    }

    /// The process dies: only what the storage synced survives (`mode` says what becomes of
    /// the rest), and the engine recovers from it in a fresh process (new directory lock).
    pub async fn crash(&mut self, mode: CrashMode) -> Result<(), String> {
        let survivor = Arc::new(self.storage.crash(mode));
        self.reopen(survivor).await
    }

    /// A clean stop (everything flushed) and a start on the same storage. A stop that fails
    /// (the storage crashed or failed under it) is a crash.
    pub async fn restart(&mut self) -> Result<(), String> {
        if self.engine.shutdown().await.is_err() {
            return self.crash(CrashMode::DropUnsynced).await;
        }
        let same = self.storage.clone();
        self.reopen(same).await
    }

    async fn reopen(&mut self, mut storage: Arc<SimStorage>) -> Result<(), String> {
        // The old engine stops its background tasks; its log is dead or closed already.
        let _ = self.engine.shutdown().await;
        let mut failures = 0;
        let (engine, dir) = loop {
            match start(self.knobs, &storage, &self.clock, &self.gateway).await {
                Ok(started) => break started,
                // A crash armed earlier hit during recovery: the process dies again.
                Err(_) if storage.is_crashed() => storage = Arc::new(storage.crash(CrashMode::DropUnsynced)),
                // An injected I/O error (each fires once) stopped recovery: start again. A
                // recovery that keeps failing is a finding.
                Err(e) if failures == OPEN_FAILURES_MAX => return Err(e),
                Err(_) => failures += 1,
            }
        };
        self.engine = engine;
        self.storage = storage;
        self._dir = dir;
        self.incarnations += 1;
        Ok(())
    }

    /// Waits until the background work the clock started (expiries, settlements due now) is
    /// done. Polls the condition with a deadline; the decisions it waits for use the manual
    /// clock, never this wait.
    pub async fn quiesce(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + QUIESCE_WAIT;
        while !self.engine.background_idle() {
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "background work still due after {QUIESCE_WAIT:?}: unsettled {:?}",
                    self.engine.unsettled_payments()
                ));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        Ok(())
    }
}

fn config(knobs: Knobs, dir: &std::path::Path, storage: &Arc<SimStorage>) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        wal: wal::WalConfig {
            // A 2xx means synced: what the crash keeps.
            sync: wal::SyncPolicy::Always,
            segment_size_bytes_max: 16 * 1024,
            ..Default::default()
        },
        storage: Some(storage.clone() as Arc<dyn wal::Storage>),
        mailbox_capacity: knobs.mailbox_capacity,
        batch_max: 4,
        mailbox_wait_ms: knobs.mailbox_wait_ms,
        passivate_after_ms: knobs.passivate_after_ms,
        order_passivate_after_ms: knobs.order_passivate_after_ms,
        // Snapshots are a step of the simulation, taken when the seed says, never by a timer.
        snapshot_every_records: u64::MAX,
        snapshot_every_ms: u64::MAX / 4,
        gateway_timeout_ms: knobs.gateway_timeout_ms,
        ..Default::default()
    }
}

async fn start(
    knobs: Knobs,
    storage: &Arc<SimStorage>,
    clock: &ManualClock,
    gateway: &SimulatedGateway,
) -> Result<(Engine, tempfile::TempDir), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(knobs, dir.path(), storage);
    let engine = Engine::open(cfg, Arc::new(clock.clone()), Arc::new(gateway.clone()))
        .await
        .map_err(|e| format!("recovery failed: {e}"))?;
    Ok((engine, dir))
}
