//! Process metrics (CPU time, memory, file descriptors, start time) in the names Prometheus
//! client libraries share (`process_*`), read from `/proc/self` when scraped. On systems
//! without `/proc` the series are absent.

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Clock ticks per second of `/proc` times: `USER_HZ`, fixed at 100 by the Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// Registers the process series that can be read.
pub fn register(r: &mut Registry) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name (which may contain spaces and ends with ')').
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // `rest` starts at field 3 (state); utime is field 14, stime 15, starttime 22, vsize 23.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        r.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            ConstCounter::new((utime + stime) as f64 / TICKS_PER_SECOND),
        );
    }
    if let Some(vsize) = field(23) {
        r.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            ConstGauge::new(vsize as i64),
        );
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time_seconds()) {
        r.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            ConstGauge::new(boot as f64 + start as f64 / TICKS_PER_SECOND),
        );
    }
    if let Some(rss) = status_kib("VmRSS:") {
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            ConstGauge::new((rss * 1024) as i64),
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        r.register(
            "process_open_fds",
            "Open file descriptors",
            ConstGauge::new(dir.count() as i64),
        );
    }
    if let Some(max) = max_open_files() {
        r.register(
            "process_max_fds",
            "Limit on open file descriptors",
            ConstGauge::new(max as i64),
        );
    }
}

fn boot_time_seconds() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}
