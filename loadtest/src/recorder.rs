//! Measurements of one run: an HDR latency histogram per operation type,
//! a count per outcome and per status, and a histogram per one-minute window.
//!
//! Counters that the progress line reads every second are atomics; the
//! histograms sit behind one `std::sync::Mutex`, held only to record a value
//! (tens of nanoseconds, never across an `.await`), which is cheaper than a
//! channel to a collector task at the request rates one client machine reaches.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency a histogram tracks, in microseconds (one hour); larger values saturate.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits kept by every histogram.
const HISTOGRAM_SIGFIG: u8 = 3;
/// Longest sample of an unexpected response body kept per status, in bytes.
pub(crate) const SAMPLE_BODY_BYTES_MAX: usize = 400;
/// Length of one latency window, in seconds.
pub(crate) const WINDOW_SECS: u64 = 60;
/// Most windows kept; later values go into the last one (a week of minutes).
const WINDOWS_MAX: usize = 7 * 24 * 60;

/// How one request turned out, from the scenario's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The expected success.
    Ok,
    /// An expected business rejection (e.g. `insufficient_stock` in a flash sale).
    Rejected,
    /// Anything else: an unexpected status or a transport failure.
    Error,
}

/// A fresh latency histogram in microseconds.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_SIGFIG).expect("constant histogram bounds are valid")
}

/// Counts of one status (or transport failure) with the first body seen.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatusCount {
    pub(crate) count: u64,
    pub(crate) sample_body: String,
}

/// Everything recorded for one operation type.
pub(crate) struct OpStats {
    pub(crate) histogram: Histogram<u64>,
    pub(crate) ok: u64,
    pub(crate) rejected: u64,
    pub(crate) errors: u64,
    /// Keyed by status text such as `"409 insufficient_stock"` or `"transport: timeout"`.
    pub(crate) by_status: BTreeMap<String, StatusCount>,
}

impl OpStats {
    fn new() -> Self {
        Self {
            histogram: new_histogram(),
            ok: 0,
            rejected: 0,
            errors: 0,
            by_status: BTreeMap::new(),
        }
    }
}

struct State {
    ops: BTreeMap<&'static str, OpStats>,
    /// All operations together; the progress line's p99 comes from here.
    all: Histogram<u64>,
    /// One histogram per `WINDOW_SECS`, by the intended start of the request.
    windows: Vec<Histogram<u64>>,
}

/// Shared by all workers of a run.
pub(crate) struct Recorder {
    start: Instant,
    requests: AtomicU64,
    ok: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    state: Mutex<State>,
}

/// One measured request, as handed to [`Recorder::record`].
pub(crate) struct Sample<'a> {
    pub(crate) op: &'static str,
    /// When the request should have been sent (open loop) or was sent (closed loop).
    pub(crate) intended: Instant,
    pub(crate) latency: Duration,
    pub(crate) class: Class,
    /// Status text, e.g. `"201"` or `"409 insufficient_stock"`.
    pub(crate) status: &'a str,
    /// Body, kept (truncated) only for the first response of a non-Ok status.
    pub(crate) body: &'a str,
}

impl Recorder {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            requests: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            state: Mutex::new(State {
                ops: BTreeMap::new(),
                all: new_histogram(),
                windows: Vec::new(),
            }),
        }
    }

    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    pub(crate) fn record(&self, s: Sample<'_>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match s.class {
            Class::Ok => &self.ok,
            Class::Rejected => &self.rejected,
            Class::Error => &self.errors,
        }
        .fetch_add(1, Ordering::Relaxed);

        let latency_us = u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX).max(1);
        let window_idx = usize::try_from(s.intended.saturating_duration_since(self.start).as_secs() / WINDOW_SECS)
            .unwrap_or(usize::MAX)
            .min(WINDOWS_MAX - 1);

        let mut state = self.state.lock().expect("recorder lock poisoned");
        state.all.saturating_record(latency_us);
        while state.windows.len() <= window_idx {
            state.windows.push(new_histogram());
        }
        state.windows[window_idx].saturating_record(latency_us);
        let op = state.ops.entry(s.op).or_insert_with(OpStats::new);
        op.histogram.saturating_record(latency_us);
        match s.class {
            Class::Ok => op.ok += 1,
            Class::Rejected => op.rejected += 1,
            Class::Error => op.errors += 1,
        }
        if let Some(entry) = op.by_status.get_mut(s.status) {
            entry.count += 1;
        } else {
            let sample_body = if s.class == Class::Ok {
                String::new()
            } else {
                truncate(s.body, SAMPLE_BODY_BYTES_MAX)
            };
            op.by_status
                .insert(s.status.to_owned(), StatusCount { count: 1, sample_body });
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }

    /// p99 of everything recorded so far, in milliseconds.
    pub(crate) fn p99_ms_so_far(&self) -> f64 {
        let state = self.state.lock().expect("recorder lock poisoned");
        if state.all.is_empty() {
            0.0
        } else {
            us_to_ms(state.all.value_at_quantile(0.99))
        }
    }

    /// Percentiles per operation type, sorted by name.
    pub(crate) fn op_reports(&self) -> Vec<OpReport> {
        let state = self.state.lock().expect("recorder lock poisoned");
        state
            .ops
            .iter()
            .map(|(name, op)| OpReport {
                op: (*name).to_owned(),
                ok: op.ok,
                rejected: op.rejected,
                errors: op.errors,
                latency: Percentiles::of(&op.histogram),
                by_status: op.by_status.clone(),
            })
            .collect()
    }

    /// Percentiles of all operations per one-minute window.
    pub(crate) fn window_reports(&self) -> Vec<WindowReport> {
        let state = self.state.lock().expect("recorder lock poisoned");
        state
            .windows
            .iter()
            .enumerate()
            .map(|(idx, h)| WindowReport {
                minute: idx as u64,
                latency: Percentiles::of(h),
            })
            .collect()
    }

    /// Percentiles of all operations together.
    pub(crate) fn overall(&self) -> Percentiles {
        let state = self.state.lock().expect("recorder lock poisoned");
        Percentiles::of(&state.all)
    }
}

/// Totals over all operation types.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    pub(crate) rejected: u64,
    pub(crate) errors: u64,
}

/// The usual percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) count: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self {
                count: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        }
        Self {
            count: h.len(),
            p50_ms: us_to_ms(h.value_at_quantile(0.50)),
            p90_ms: us_to_ms(h.value_at_quantile(0.90)),
            p99_ms: us_to_ms(h.value_at_quantile(0.99)),
            p999_ms: us_to_ms(h.value_at_quantile(0.999)),
            max_ms: us_to_ms(h.max()),
            mean_ms: h.mean() / 1_000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpReport {
    pub(crate) op: String,
    pub(crate) ok: u64,
    pub(crate) rejected: u64,
    pub(crate) errors: u64,
    pub(crate) latency: Percentiles,
    pub(crate) by_status: BTreeMap<String, StatusCount>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct WindowReport {
    pub(crate) minute: u64,
    pub(crate) latency: Percentiles,
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// The first `max_bytes` of `s`, cut at a character boundary.
pub(crate) fn truncate(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_owned();
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(op: &'static str, at: Instant, ms: u64, class: Class, status: &'a str) -> Sample<'a> {
        Sample {
            op,
            intended: at,
            latency: Duration::from_millis(ms),
            class,
            status,
            body: "{\"code\":\"x\"}",
        }
    }

    #[test]
    fn percentiles_of_one_to_thousand_ms() {
        let mut h = new_histogram();
        for ms in 1..=1_000u64 {
            h.record(ms * 1_000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1_000);
        // Three significant digits: each value within 0.1 % of the exact one.
        assert!((p.p50_ms - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p90_ms - 900.0).abs() <= 0.9, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.p999_ms - 999.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_ms - 1_000.0).abs() <= 1.0, "{p:?}");
        assert!(p.p50_ms <= p.p90_ms && p.p90_ms <= p.p99_ms && p.p99_ms <= p.p999_ms);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let p = Percentiles::of(&new_histogram());
        assert_eq!(p.count, 0);
        assert_eq!(p.max_ms, 0.0);
    }

    #[test]
    fn record_counts_per_class_status_and_window() {
        let start = Instant::now();
        let rec = Recorder::new(start);
        rec.record(sample("create", start, 5, Class::Ok, "201"));
        rec.record(sample("create", start, 7, Class::Ok, "201"));
        rec.record(sample(
            "create",
            start + Duration::from_secs(61),
            9,
            Class::Rejected,
            "409 insufficient_stock",
        ));
        rec.record(sample("read", start, 1, Class::Error, "500"));

        let counts = rec.counts();
        assert_eq!(
            (counts.requests, counts.ok, counts.rejected, counts.errors),
            (4, 2, 1, 1)
        );
        let ops = rec.op_reports();
        assert_eq!(ops.len(), 2);
        let create = &ops[0];
        assert_eq!(create.op, "create");
        assert_eq!((create.ok, create.rejected, create.errors), (2, 1, 0));
        assert_eq!(create.by_status["201"].count, 2);
        assert_eq!(create.by_status["201"].sample_body, "");
        assert_eq!(
            create.by_status["409 insufficient_stock"].sample_body,
            "{\"code\":\"x\"}"
        );
        let windows = rec.window_reports();
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].latency.count, 3);
        assert_eq!(windows[1].latency.count, 1);
        assert!((rec.p99_ms_so_far() - 9.0).abs() < 0.01);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
