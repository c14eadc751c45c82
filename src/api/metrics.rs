//! `/metrics`: Prometheus text exposition, written by hand (the format is a few lines of text).
//!
//! HTTP series are keyed by method, route template (axum's `MatchedPath`, so `/v1/orders/{id}`
//! and not every order id) and status, which bounds their number by the route table. Engine
//! series are read from [`EngineStats`] when scraped.

use crate::engine::EngineStats;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the request latency buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; LATENCY_BUCKETS_SECONDS.len() + 1],
}

/// The HTTP metrics registry.
#[derive(Default)]
pub struct Metrics {
    /// Series by (method, route, status). A plain lock: held for a map update per request,
    /// never across an await, and the key space is bounded by the route table.
    /// Keys are static strings (route templates from the route table, standard methods), so
    /// recording a request allocates nothing.
    http: Mutex<BTreeMap<(&'static str, &'static str, u16), Series>>,
    /// Open event-stream connections (shared with each stream's task).
    pub sse_connections: Arc<AtomicU64>,
}

impl Metrics {
    pub fn observe(&self, method: &'static str, route: &'static str, status: u16, seconds: f64) {
        let mut http = self.http.lock();
        let s = http.entry((method, route, status)).or_default();
        s.count += 1;
        s.sum_seconds += seconds;
        let idx = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        s.buckets[idx] += 1;
    }

    /// The exposition text. `stats` is `None` while the engine recovers.
    pub fn render(&self, stats: Option<&EngineStats>, ready: bool) -> String {
        let mut out = String::with_capacity(4096);
        gauge(
            &mut out,
            "oms_ready",
            "1 when recovered and the log is writable",
            ready as u64,
        );
        gauge(
            &mut out,
            "oms_sse_connections",
            "Open event-stream connections",
            self.sse_connections.load(Ordering::Relaxed),
        );
        {
            let http = self.http.lock();
            out.push_str("# HELP oms_http_requests_total HTTP requests by method, route and status\n");
            out.push_str("# TYPE oms_http_requests_total counter\n");
            for ((m, r, st), s) in http.iter() {
                let _ = writeln!(
                    out,
                    "oms_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{st}\"}} {}",
                    escape(r),
                    s.count
                );
            }
            out.push_str("# HELP oms_http_request_duration_seconds HTTP request latency\n");
            out.push_str("# TYPE oms_http_request_duration_seconds histogram\n");
            for ((m, r, st), s) in http.iter() {
                let labels = format!("method=\"{m}\",route=\"{}\",status=\"{st}\"", escape(r));
                let mut cumulative = 0;
                for (i, le) in LATENCY_BUCKETS_SECONDS.iter().enumerate() {
                    cumulative += s.buckets[i];
                    let _ = writeln!(
                        out,
                        "oms_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "oms_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    s.count
                );
                let _ = writeln!(
                    out,
                    "oms_http_request_duration_seconds_sum{{{labels}}} {}",
                    s.sum_seconds
                );
                let _ = writeln!(out, "oms_http_request_duration_seconds_count{{{labels}}} {}", s.count);
            }
        }
        if let Some(st) = stats {
            engine(&mut out, st);
        }
        out
    }
}

fn engine(out: &mut String, st: &EngineStats) {
    if let Some(w) = &st.wal {
        counter(
            out,
            "oms_wal_records_total",
            "Records appended to the log",
            w.records_appended,
        );
        counter(
            out,
            "oms_wal_bytes_total",
            "Bytes written to log segments",
            w.bytes_written,
        );
        counter(out, "oms_wal_batches_total", "Group-commit writes", w.batches);
        counter(out, "oms_wal_fsyncs_total", "fdatasync calls on segments", w.fsyncs);
        gauge(
            out,
            "oms_wal_batch_records_mean",
            "Mean records per group commit",
            w.batch_records_mean,
        );
        gauge(
            out,
            "oms_wal_batch_records_last",
            "Records in the last group commit",
            w.batch_records_last,
        );
        counter(
            out,
            "oms_wal_segments_rolled_total",
            "Segments created by rolling",
            w.segments_rolled,
        );
    }
    out.push_str("# HELP oms_actors_active Actors with a running task, by kind\n");
    out.push_str("# TYPE oms_actors_active gauge\n");
    let _ = writeln!(out, "oms_actors_active{{kind=\"pair\"}} {}", st.pair_actors_active);
    let _ = writeln!(out, "oms_actors_active{{kind=\"order\"}} {}", st.order_actors_active);
    gauge(out, "oms_pairs", "SKU-warehouse pairs known", st.pairs);
    gauge(out, "oms_orders", "Orders known", st.orders);
    counter(
        out,
        "oms_mailbox_full_total",
        "Sends that found an actor mailbox full",
        st.mailbox_full_total,
    );
    let _ = writeln!(
        out,
        "# HELP oms_recovery_duration_seconds Time the last recovery took\n# TYPE oms_recovery_duration_seconds gauge\noms_recovery_duration_seconds {}",
        st.recovery_ms as f64 / 1000.0
    );
    gauge(
        out,
        "oms_recovered_records",
        "Log records replayed by the last recovery",
        st.recovered_records,
    );
    counter(
        out,
        "oms_snapshots_total",
        "Snapshots taken since start",
        st.snapshots_taken,
    );
    counter(
        out,
        "oms_placement_retries_total",
        "Placements that re-allocated after losing a race for stock",
        st.placements_retried_total,
    );
    gauge(
        out,
        "oms_idempotency_keys",
        "Stored idempotent responses",
        st.idempotency_keys,
    );
    gauge(
        out,
        "oms_idempotency_bytes",
        "Approximate bytes of the stored idempotent responses",
        st.idempotency_bytes,
    );
    counter(
        out,
        "oms_idempotency_evicted_early_total",
        "Idempotent responses forgotten before 24 h because a bound was reached",
        st.idempotency_evicted_early_total,
    );
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}
