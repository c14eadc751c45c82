//! Recovery of a real data directory by the real binary: N orders are written through the
//! engine library, then the `oms` binary is started on the directory and timed until `/readyz`
//! answers 200. Reports time-to-ready, records replayed per second (the server's own recovery
//! metrics), peak RSS (`VmHWM`) and the directory's size. Not a criterion bench: one
//! generation, then `--restarts` timed starts.
//!
//! Run: `cargo bench --bench recovery -- --orders 1000000` (flags: `-- --help`).
//! Method and results: docs/PERFORMANCE.md ("How to measure").
//!
//! Why in-process generation is honest: the records are written by the same engine code the
//! server runs (placement, holds, the log record with the order), only with `SyncPolicy::None`,
//! which changes when the log is fsync'd, not what it contains; the log is flushed and closed
//! before the binary starts. It is several times faster than driving the server over HTTP (no
//! HTTP, JSON or fsync), which matters at 10 M orders. It runs in a child process (this binary
//! again), so the memory the engine held is returned to the OS before the server starts. The
//! clock is the system clock and reservations last the maximum (7 days), so the server finds
//! nothing to expire when it starts and the measurement is recovery alone.
//!
//! The machine is protected: generation and the server are stopped when `MemAvailable` falls
//! below `--mem-reserve-mib` or the directory's file system below `--disk-reserve-gib`, and the
//! data directory is removed at the end unless `--keep` (or `--reuse`) is given.

#[path = "../common/mod.rs"]
mod common;
// Shared with the load generator (std-only files). Their unit tests run there; compiled here
// under `cfg(test)` (clippy --all-targets) without a harness, the test items go unused.
#[path = "../../loadtest/src/exposition.rs"]
#[cfg_attr(test, allow(unused))]
mod exposition;
mod generate;
#[path = "../../loadtest/src/procfs.rs"]
#[cfg_attr(test, allow(unused))]
mod procfs;
mod restart;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use generate::Generated;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Most orders one run may generate.
const ORDERS_MAX: u64 = 100_000_000;
/// Most timed restarts of one directory.
const RESTARTS_MAX: u32 = 20;

/// Recovery benchmark: generate a data directory of N orders, start `oms` on it, time it.
#[derive(Parser, Debug)]
#[command(name = "recovery")]
pub(crate) struct Args {
    /// Orders to generate.
    #[arg(long, default_value_t = 1_000_000)]
    orders: u64,
    /// Lines per order (1..=3), over 10,000 SKUs x 4 warehouses.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=3))]
    lines: u64,
    /// Cancel every K-th order (an update record among the placements); 0 = none.
    #[arg(long, default_value_t = 10)]
    cancel_every: u64,
    /// Store each placement's rendered 201 response in its record, as a request with an
    /// `Idempotency-Key` does (larger records and state, as with the load generator's traffic).
    #[arg(long)]
    idempotency_keys: bool,
    /// Take a snapshot after generating, so the restart loads it instead of replaying the log.
    #[arg(long)]
    snapshot: bool,
    /// The `oms` binary to start (default: the one built with this bench).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Directory in which to create the data directory (default: the system temp dir).
    #[arg(long)]
    parent: Option<PathBuf>,
    /// Keep the generated data directory (its path is printed) instead of removing it.
    #[arg(long)]
    keep: bool,
    /// Measure an existing data directory (never removed) instead of generating one.
    #[arg(long, conflicts_with_all = ["keep", "parent", "snapshot", "idempotency_keys"])]
    reuse: Option<PathBuf>,
    /// Timed starts of the binary on the directory.
    #[arg(long, default_value_t = 1)]
    restarts: u32,
    /// Stop when the machine's available memory falls below this, in MiB.
    #[arg(long, default_value_t = 2_048)]
    mem_reserve_mib: u64,
    /// Stop generating when the data directory's file system has less free space, in GiB.
    #[arg(long, default_value_t = 5)]
    disk_reserve_gib: u64,
    /// Longest wait for one start to answer `/readyz` 200, in seconds.
    #[arg(long, default_value_t = 1_800)]
    ready_timeout_secs: u64,
    /// Write the results as JSON.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Internal: generate into this directory, print what was generated as JSON, exit. The
    /// bench runs generation in a child process of its own so that every byte the engine held
    /// is returned to the OS before the server starts (an allocator keeps freed memory).
    #[arg(long, hide = true)]
    generate_into: Option<PathBuf>,
}

/// The directory's size on disk.
#[derive(Debug, Serialize, Default)]
struct DirSize {
    files: u64,
    /// Sum of file lengths.
    apparent_bytes: u64,
    /// Blocks allocated, as `du` counts them.
    allocated_bytes: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    bin: PathBuf,
    data_dir: PathBuf,
    kept: bool,
    generated: Option<Generated>,
    size: DirSize,
    restarts: Vec<restart::Restart>,
}

/// The data directory; removed when dropped unless kept.
struct DataDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = std::fs::remove_dir_all(&self.path)
        {
            eprintln!("recovery: could not remove {}: {e}", self.path.display());
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Some(dir) = &args.generate_into {
        match generate::generate(&args, dir).and_then(|g| Ok(serde_json::to_string(&g)?)) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("recovery (generator): {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    if let Err(e) = run(args) {
        eprintln!("recovery: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    ensure!(
        (1..=ORDERS_MAX).contains(&args.orders),
        "--orders must be 1..={ORDERS_MAX}"
    );
    ensure!(
        (1..=RESTARTS_MAX).contains(&args.restarts),
        "--restarts must be 1..={RESTARTS_MAX}"
    );
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_oms")));
    ensure!(bin.is_file(), "no oms binary at {}", bin.display());
    let (dir, generated) = match &args.reuse {
        Some(path) => {
            ensure!(
                path.join("wal").is_dir(),
                "{} has no wal/: not an oms data directory",
                path.display()
            );
            let dir = DataDir {
                path: path.clone(),
                keep: true,
            };
            (dir, None)
        }
        None => {
            let parent = args.parent.clone().unwrap_or_else(std::env::temp_dir);
            let path = parent.join(format!("oms-recovery-{}-{}", args.orders, std::process::id()));
            ensure!(!path.exists(), "{} exists already", path.display());
            eprintln!("recovery: data directory {}", path.display());
            let dir = DataDir { path, keep: args.keep };
            let generated = generate::in_child(&args, &dir.path)?;
            (dir, Some(generated))
        }
    };
    let size = dir_size(&dir.path)?;
    eprintln!(
        "recovery: {} in {} files; this process now holds {} MiB",
        human_bytes(size.allocated_bytes),
        size.files,
        procfs::read_status_kib(std::process::id(), "VmRSS").unwrap_or(0) / 1024
    );
    let mut restarts = Vec::new();
    for i in 0..args.restarts {
        let limits = restart::Limits {
            ready_timeout: Duration::from_secs(args.ready_timeout_secs),
            mem_reserve_kib: args.mem_reserve_mib * 1024,
        };
        let r = restart::measure(&bin, &dir.path, limits).with_context(|| format!("start {}", i + 1))?;
        eprintln!("recovery: start {}: ready after {:.2} s", i + 1, r.time_to_ready_secs);
        restarts.push(r);
    }
    let report = Report {
        bin,
        data_dir: dir.path.clone(),
        kept: dir.keep,
        generated,
        size,
        restarts,
    };
    print!("{}", render(&report));
    if let Some(path) = &args.json_out {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Files, apparent and allocated bytes under `dir`.
fn dir_size(dir: &Path) -> Result<DirSize> {
    use std::os::unix::fs::MetadataExt;
    let mut size = DirSize::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                size.files += 1;
                size.apparent_bytes += meta.len();
                size.allocated_bytes += meta.blocks() * 512;
            }
        }
    }
    Ok(size)
}

pub(crate) fn human_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// The human-readable summary.
fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "binary {}", r.bin.display());
    let kept = if r.kept { " (kept)" } else { " (removed)" };
    let _ = writeln!(out, "data dir {}{kept}", r.data_dir.display());
    if let Some(g) = &r.generated {
        let _ = writeln!(
            out,
            "generated {} orders ({} cancelled), {} log records in {:.1} s ({:.0} orders/s, in-process, sync none){}",
            g.orders,
            g.cancelled,
            g.log_records,
            g.secs,
            g.orders_per_sec,
            if g.snapshot { ", then a snapshot" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "size {} allocated ({} apparent) in {} files",
        human_bytes(r.size.allocated_bytes),
        human_bytes(r.size.apparent_bytes),
        r.size.files
    );
    let _ = writeln!(out, "{}", restart::Restart::header());
    for (i, s) in r.restarts.iter().enumerate() {
        let _ = writeln!(out, "{}", s.row(i + 1));
    }
    out
}
