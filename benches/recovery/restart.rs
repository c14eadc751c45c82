//! One timed start of the `oms` binary on a data directory: spawn it on a free loopback port,
//! poll `/readyz` until 200, then read what it says about its recovery (`/metrics` and its
//! JSON log lines) and what Linux says about it (`VmHWM`, `VmRSS`, CPU time), and stop it with
//! SIGTERM.
//!
//! HTTP is spoken by hand over `std::net` (HTTP/1.0, so the answer is never chunked): the
//! bench needs two GETs and no async runtime while it watches the process.

use crate::{exposition, procfs};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Interval between `/readyz` polls: the resolution of time-to-ready.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Interval between checks of the machine's available memory while the server recovers.
const MEM_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Timeout of one HTTP exchange with the server.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the "ready" log line after `/readyz` said 200 (it is logged just after).
const READY_LINE_WAIT: Duration = Duration::from_secs(2);
/// Longest wait for a graceful stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Server log lines kept to explain a failed start.
const LOG_TAIL_LINES_MAX: usize = 20;

/// Bounds of one start.
pub(crate) struct Limits {
    pub(crate) ready_timeout: Duration,
    pub(crate) mem_reserve_kib: u64,
}

/// What one start measured. Server figures are `None` when the server did not report them.
#[derive(Debug, Serialize)]
pub(crate) struct Restart {
    /// From spawning the process to the first 200 from `/readyz`.
    pub(crate) time_to_ready_secs: f64,
    /// `oms_recovered_records`: log records replayed (after the snapshot, if any).
    pub(crate) recovered_records: Option<u64>,
    /// `oms_recovery_duration_seconds`: opening the log, loading the snapshot, replaying.
    pub(crate) recovery_secs: Option<f64>,
    /// `recovered_records / recovery_secs`.
    pub(crate) records_per_sec: Option<f64>,
    /// `recovered_records / time_to_ready_secs`: the rate a client waiting for readiness sees.
    pub(crate) records_per_sec_to_ready: Option<f64>,
    /// `oms_orders` once ready.
    pub(crate) orders: Option<u64>,
    /// Peak resident memory of the server until ready (`VmHWM`).
    pub(crate) rss_peak_kib: Option<u64>,
    pub(crate) rss_at_ready_kib: Option<u64>,
    /// `rss_peak_kib` per recovered order, in bytes.
    pub(crate) rss_peak_bytes_per_order: Option<f64>,
    /// Server CPU (user + system) until ready: recovery uses two threads.
    pub(crate) cpu_secs_to_ready: Option<f64>,
    /// Fields of the server's `recovered` and `ready` log lines.
    pub(crate) log_recovered: Option<Value>,
    pub(crate) log_ready: Option<Value>,
    /// From SIGTERM to exit.
    pub(crate) stop_secs: f64,
}

impl Restart {
    pub(crate) fn header() -> String {
        format!(
            "{:<6} {:>9} {:>11} {:>11} {:>12} {:>11} {:>10} {:>13} {:>9} {:>8}",
            "start",
            "ready s",
            "records",
            "recovery s",
            "records/s",
            "orders",
            "peak MiB",
            "peak B/order",
            "CPU s",
            "stop s"
        )
    }

    pub(crate) fn row(&self, n: usize) -> String {
        fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
            v.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
        }
        format!(
            "{:<6} {:>9.2} {:>11} {:>11} {:>12} {:>11} {:>10} {:>13} {:>9} {:>8.2}",
            n,
            self.time_to_ready_secs,
            opt(self.recovered_records),
            opt(self.recovery_secs.map(|s| format!("{s:.2}"))),
            opt(self.records_per_sec.map(|r| format!("{r:.0}"))),
            opt(self.orders),
            opt(self.rss_peak_kib.map(|k| format!("{:.1}", k as f64 / 1024.0))),
            opt(self.rss_peak_bytes_per_order.map(|b| format!("{b:.0}"))),
            opt(self.cpu_secs_to_ready.map(|s| format!("{s:.2}"))),
            self.stop_secs
        )
    }
}

/// The server's stderr as it arrives: the last lines, and the recovery log lines' fields.
#[derive(Default)]
struct Log {
    tail: VecDeque<String>,
    recovered: Option<Value>,
    ready: Option<Value>,
}

/// Starts `bin` on `dir`, times it until ready, reads its figures, stops it.
pub(crate) fn measure(bin: &Path, dir: &Path, limits: Limits) -> Result<Restart> {
    let addr = free_loopback_addr()?;
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir)
        // No keys: /metrics answers without one (the server then insists on loopback).
        .env_remove("OMS_API_KEYS")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let log = read_log(&mut child);
    let waited = wait_ready(&mut child, addr, started, &limits, &log);
    let time_to_ready_secs = started.elapsed().as_secs_f64();
    let ready = waited.is_ok();
    let measured = waited.and_then(|()| read_figures(&child, addr, time_to_ready_secs, &log));
    // A server that never got ready (or took too much memory) is killed at once: SIGTERM
    // would let it finish a replay first.
    let stop_secs = stop(&mut child, ready);
    let mut restart = measured?;
    restart.stop_secs = stop_secs;
    Ok(restart)
}

/// Polls `/readyz` until 200; fails if the process exits, the time runs out or memory runs
/// short (then the caller stops the server).
fn wait_ready(
    child: &mut Child,
    addr: SocketAddr,
    started: Instant,
    limits: &Limits,
    log: &Arc<Mutex<Log>>,
) -> Result<()> {
    let mut last_mem_check = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the server exited with {status} before it was ready; its last lines:\n{}",
                tail(log)
            );
        }
        if started.elapsed() > limits.ready_timeout {
            bail!(
                "not ready within {:?}; its last lines:\n{}",
                limits.ready_timeout,
                tail(log)
            );
        }
        if last_mem_check.elapsed() >= MEM_CHECK_INTERVAL {
            last_mem_check = Instant::now();
            if let Some(avail) = procfs::read_meminfo_kib("MemAvailable")
                && avail < limits.mem_reserve_kib
            {
                bail!(
                    "stopped the server: available memory fell to {} MiB (--mem-reserve-mib {}); server RSS {} MiB",
                    avail / 1024,
                    limits.mem_reserve_kib / 1024,
                    procfs::read_status_kib(child.id(), "VmRSS").unwrap_or(0) / 1024
                );
            }
        }
        if matches!(http_get(addr, "/readyz"), Ok((200, _))) {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Reads the process's memory and CPU, then `/metrics`, then the recovery log lines.
fn read_figures(child: &Child, addr: SocketAddr, time_to_ready_secs: f64, log: &Arc<Mutex<Log>>) -> Result<Restart> {
    let pid = child.id();
    let rss_peak_kib = procfs::read_status_kib(pid, "VmHWM");
    let rss_at_ready_kib = procfs::read_status_kib(pid, "VmRSS");
    let cpu_secs_to_ready = procfs::read_cpu_ticks(pid).map(|t| t as f64 / procfs::clock_ticks_per_sec() as f64);
    let (status, metrics) = http_get(addr, "/metrics").context("reading /metrics")?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let metric = |name| exposition::parse_metric(&metrics, name);
    let recovered_records = metric("oms_recovered_records").map(|v| v as u64);
    let recovery_secs = metric("oms_recovery_duration_seconds");
    let orders = metric("oms_orders").map(|v| v as u64);
    let waited = Instant::now();
    while log.lock().unwrap().ready.is_none() && waited.elapsed() < READY_LINE_WAIT {
        std::thread::sleep(POLL_INTERVAL);
    }
    let (log_recovered, log_ready) = {
        let l = log.lock().unwrap();
        (l.recovered.clone(), l.ready.clone())
    };
    // No rate without records (a restart from a snapshot with nothing after it).
    let per = |n: Option<u64>, d: Option<f64>| {
        n.filter(|n| *n > 0)
            .zip(d.filter(|d| *d > 0.0))
            .map(|(n, d)| n as f64 / d)
    };
    Ok(Restart {
        time_to_ready_secs,
        recovered_records,
        recovery_secs,
        records_per_sec: per(recovered_records, recovery_secs),
        records_per_sec_to_ready: per(recovered_records, Some(time_to_ready_secs)),
        orders,
        rss_peak_kib,
        rss_at_ready_kib,
        rss_peak_bytes_per_order: rss_peak_kib
            .zip(orders.filter(|o| *o > 0))
            .map(|(k, o)| k as f64 * 1024.0 / o as f64),
        cpu_secs_to_ready,
        log_recovered,
        log_ready,
        stop_secs: 0.0,
    })
}

/// SIGTERM (graceful: drain, flush, exit), then SIGKILL if it takes too long, or SIGKILL at
/// once when not `graceful`; the seconds taken.
fn stop(child: &mut Child, graceful: bool) -> f64 {
    let started = Instant::now();
    if !graceful {
        let _ = child.kill();
        let _ = child.wait();
        return started.elapsed().as_secs_f64();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stderr(Stdio::null())
        .status();
    while started.elapsed() < STOP_TIMEOUT {
        if let Ok(Some(_)) = child.try_wait() {
            return started.elapsed().as_secs_f64();
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    eprintln!("recovery: the server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it");
    let _ = child.kill();
    let _ = child.wait();
    started.elapsed().as_secs_f64()
}

/// A loopback address with a port that was free a moment ago (the server binds it next; if
/// another process took it meanwhile, the server says so and the start fails visibly).
fn free_loopback_addr() -> Result<SocketAddr> {
    let probe = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(probe.local_addr()?)
}

/// Collects the server's stderr on a thread: the last lines, and the fields of its `recovered`
/// and `ready` JSON log lines.
fn read_log(child: &mut Child) -> Arc<Mutex<Log>> {
    let log = Arc::new(Mutex::new(Log::default()));
    if let Some(stderr) = child.stderr.take() {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let fields = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|v| v.get("fields").cloned());
                let mut l = log.lock().unwrap();
                match fields.as_ref().and_then(|f| f.get("message")).and_then(Value::as_str) {
                    Some("recovered") => l.recovered = fields.clone(),
                    Some("ready") => l.ready = fields.clone(),
                    _ => {}
                }
                if l.tail.len() == LOG_TAIL_LINES_MAX {
                    l.tail.pop_front();
                }
                l.tail.push_back(line);
            }
        });
    }
    log
}

fn tail(log: &Arc<Mutex<Log>>) -> String {
    log.lock().unwrap().tail.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// One `GET` over HTTP/1.0: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line in the answer")?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}
