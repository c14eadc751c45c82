//! Writing the data directory: warehouses and stock, then N orders placed through the engine
//! library from `IN_FLIGHT` tasks (every K-th cancelled), with `SyncPolicy::None` and no
//! snapshots, and the log closed at the end. A watcher thread stops it early when memory or
//! disk run short, so a 10 M run cannot take the machine down with it.

use crate::common::{IN_FLIGHT, SKUS, key, order, runtime, setup};
use crate::{Args, human_bytes, procfs};
use anyhow::{Context, Result, bail};
use oms::domain::order::{NewOrder, RESERVATION_TTL_MS_MAX};
use oms::engine::{Claim, Engine, EngineConfig, IdemSpec, KeyHold, OrderRequest, SimulatedGateway, SystemClock};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Interval between checks of free memory and disk.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// Interval between progress lines.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// What generating the directory took.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Generated {
    pub(crate) orders: u64,
    pub(crate) cancelled: u64,
    pub(crate) log_records: u64,
    pub(crate) secs: f64,
    pub(crate) orders_per_sec: f64,
    pub(crate) snapshot: bool,
}

/// Why generation had to stop early, set by the resource watcher.
#[derive(Default)]
struct Stop {
    now: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Stop {
    fn request(&self, reason: String) {
        self.reason.lock().unwrap().get_or_insert(reason);
        self.now.store(true, Ordering::Relaxed);
    }
}

/// Runs [`generate`] in a child process (this binary with `--generate-into`), so the memory
/// the engine held is the OS's again when the server starts; its progress goes to stderr.
pub(crate) fn in_child(args: &Args, dir: &Path) -> Result<Generated> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--generate-into").arg(dir);
    for (flag, value) in [
        ("--orders", args.orders),
        ("--lines", args.lines),
        ("--cancel-every", args.cancel_every),
        ("--mem-reserve-mib", args.mem_reserve_mib),
        ("--disk-reserve-gib", args.disk_reserve_gib),
    ] {
        cmd.arg(flag).arg(value.to_string());
    }
    if args.idempotency_keys {
        cmd.arg("--idempotency-keys");
    }
    if args.snapshot {
        cmd.arg("--snapshot");
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the generator")?;
    if !out.status.success() {
        bail!("the generator failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("reading the generator's result")
}

/// Order `i`: `lines` pseudo-random SKUs of `SKUS`, 1, 2 and 3 units, reservations for the
/// longest allowed time.
fn order_of(i: u64, lines: u64) -> NewOrder {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut o = order(
        (0..lines)
            .map(|k| (key(&format!("sku{}", (h >> (k * 16)) % SKUS)), 1 + k))
            .collect(),
    );
    o.reservation_ttl_ms = RESERVATION_TTL_MS_MAX;
    o
}

/// Claims the key a `POST /v1/orders` with `Idempotency-Key` would: the hold gives the spec
/// that stores the rendered 201 body with the placement, as the API does.
async fn claim_key(engine: &Engine, i: u64) -> Result<KeyHold> {
    let key = format!("recovery-{i}");
    let fingerprint = oms::api::idempotency::fingerprint(&axum::http::Method::POST, "/v1/orders", key.as_bytes());
    match engine.claim_idempotency_key(key, fingerprint).await {
        Claim::Run(hold) => Ok(hold),
        _ => bail!("idempotency key recovery-{i} was already used"),
    }
}

fn spec_of(hold: &KeyHold) -> IdemSpec<Arc<oms::domain::Order>> {
    hold.spec(Box::new(|o: &Arc<oms::domain::Order>| {
        (201, oms::api::output::to_bytes(&oms::api::output::order(o)))
    }))
}

/// Writes the directory: warehouses and stock, then the orders from `IN_FLIGHT` tasks.
pub(crate) fn generate(args: &Args, dir: &Path) -> Result<Generated> {
    let stop = Arc::new(Stop::default());
    let watcher = watch_resources(dir, args, stop.clone());
    let rt = runtime();
    let started = Instant::now();
    let result = rt.block_on(async {
        let config = EngineConfig {
            data_dir: dir.to_path_buf(),
            wal: wal::WalConfig {
                sync: wal::SyncPolicy::None,
                ..Default::default()
            },
            snapshot_every_records: u64::MAX,
            snapshot_every_ms: u64::MAX,
            ..Default::default()
        };
        let engine = Engine::open(config, Arc::new(SystemClock), Arc::new(SimulatedGateway::default()))
            .await
            .context("opening the engine")?;
        setup(&engine, SKUS).await;
        let (placed, cancelled) = place_all(&engine, args, &stop).await?;
        if args.snapshot && !stop.now.load(Ordering::Relaxed) {
            let e = engine.clone();
            tokio::task::spawn_blocking(move || e.snapshot_now()).await??;
        }
        let log_records = engine.stats().wal.map_or(0, |w| w.records_appended);
        engine.shutdown().await.context("closing the log")?;
        Ok::<_, anyhow::Error>((placed, cancelled, log_records))
    });
    drop(rt);
    stop.now.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let (orders, cancelled, log_records) = result?;
    if let Some(reason) = stop.reason.lock().unwrap().take() {
        bail!("generation stopped after {orders} orders: {reason}");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("recovery: generated {orders} orders ({log_records} records) in {secs:.1} s");
    Ok(Generated {
        orders,
        cancelled,
        log_records,
        secs,
        orders_per_sec: orders as f64 / secs,
        snapshot: args.snapshot,
    })
}

/// Places `args.orders` orders (cancelling every `cancel_every`-th) until done or told to stop;
/// returns (placed, cancelled).
async fn place_all(engine: &Engine, args: &Args, stop: &Arc<Stop>) -> Result<(u64, u64)> {
    let next = Arc::new(AtomicU64::new(0));
    let placed = Arc::new(AtomicU64::new(0));
    let cancelled = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (engine, next, stop) = (engine.clone(), next.clone(), stop.clone());
        let (placed, cancelled) = (placed.clone(), cancelled.clone());
        let (n, lines, idem, cancel_every) = (args.orders, args.lines, args.idempotency_keys, args.cancel_every);
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || stop.now.load(Ordering::Relaxed) {
                    return Ok::<_, anyhow::Error>(());
                }
                let hold = if idem { Some(claim_key(&engine, i).await?) } else { None };
                let o = engine
                    .place_order(order_of(i, lines), hold.as_ref().map(spec_of))
                    .await
                    .with_context(|| format!("placing order {i}"))?;
                placed.fetch_add(1, Ordering::Relaxed);
                if cancel_every > 0 && i % cancel_every == cancel_every - 1 {
                    let req = OrderRequest::Cancel {
                        reason: "recovery bench".into(),
                    };
                    engine.order_request(o.id, req, None).await.context("cancelling")?;
                    cancelled.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let progress = tokio::spawn({
        let (placed, n) = (placed.clone(), args.orders);
        async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(PROGRESS_INTERVAL).await;
                let p = placed.load(Ordering::Relaxed);
                let rate = p as f64 / started.elapsed().as_secs_f64();
                eprintln!("recovery: {p} of {n} orders placed ({rate:.0}/s)");
            }
        }
    });
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    progress.abort();
    Ok((placed.load(Ordering::Relaxed), cancelled.load(Ordering::Relaxed)))
}

/// Every `WATCH_INTERVAL`, asks `stop` to stop when memory or disk run short.
fn watch_resources(dir: &Path, args: &Args, stop: Arc<Stop>) -> std::thread::JoinHandle<()> {
    let (dir, mem_reserve_kib) = (dir.to_path_buf(), args.mem_reserve_mib * 1024);
    let disk_reserve_bytes = args.disk_reserve_gib << 30;
    std::thread::spawn(move || {
        while !stop.now.load(Ordering::Relaxed) {
            if let Some(avail) = procfs::read_meminfo_kib("MemAvailable")
                && avail < mem_reserve_kib
            {
                stop.request(format!(
                    "available memory fell to {} MiB (--mem-reserve-mib {})",
                    avail / 1024,
                    mem_reserve_kib / 1024
                ));
            }
            if let Some(avail) = disk_avail_bytes(&dir)
                && avail < disk_reserve_bytes
            {
                stop.request(format!(
                    "free disk fell to {} (--disk-reserve-gib {})",
                    human_bytes(avail),
                    disk_reserve_bytes >> 30
                ));
            }
            std::thread::sleep(WATCH_INTERVAL);
        }
    })
}

/// Free bytes on the file system holding `path`, from `df` (no FFI for `statvfs`).
pub(crate) fn disk_avail_bytes(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.lines().nth(1)?.trim().parse().ok()
}
