//! The result of a run: printed as a table on stdout and written as JSON
//! with `--json-out`. Also decides pass or fail.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::driver::DriveSummary;
use crate::recorder::{Counts, OpReport, Percentiles, Recorder, WindowReport};
use crate::usage::ServerUsage;

#[derive(Debug, Serialize)]
pub(crate) struct RunReport {
    pub(crate) scenario: &'static str,
    pub(crate) seed: u64,
    pub(crate) run_tag: String,
    pub(crate) url: String,
    /// Closed or open loop and its knobs.
    pub(crate) mode: Value,
    /// The scenario's own flags.
    pub(crate) parameters: Value,
    pub(crate) setup_secs: Option<f64>,
    pub(crate) elapsed_secs: f64,
    pub(crate) units_started: u64,
    pub(crate) units_dropped: u64,
    pub(crate) interrupted: bool,
    pub(crate) counts: Counts,
    pub(crate) requests_per_sec: f64,
    pub(crate) ok_per_sec: f64,
    /// Server CPU (user + system) per request of the measured phase, in microseconds;
    /// `null` when it could not be measured (see `server`).
    pub(crate) server_cpu_us_per_request: Option<f64>,
    /// The same per successful request.
    pub(crate) server_cpu_us_per_ok: Option<f64>,
    /// Where the server figures came from, its CPU seconds and memory.
    pub(crate) server: Option<ServerUsage>,
    pub(crate) latency_all: Percentiles,
    pub(crate) operations: Vec<OpReport>,
    pub(crate) windows: Vec<WindowReport>,
    /// Scenario-specific results (verification, lifecycles per minute, RSS).
    pub(crate) extra: Value,
    pub(crate) passed: bool,
    pub(crate) failures: Vec<String>,
}

/// What every scenario hands over to build its report.
pub(crate) struct ReportInput {
    pub(crate) scenario: &'static str,
    pub(crate) parameters: Value,
    pub(crate) setup_secs: Option<f64>,
    pub(crate) summary: DriveSummary,
    pub(crate) extra: Value,
    /// Scenario-specific verification failures.
    pub(crate) failures: Vec<String>,
}

impl RunReport {
    pub(crate) fn build(
        global: &crate::cli::Global,
        run_tag: &str,
        mode: Value,
        rec: &Recorder,
        input: ReportInput,
    ) -> Self {
        let counts = rec.counts();
        let secs = input.summary.elapsed.as_secs_f64().max(f64::EPSILON);
        let mut failures = input.failures;
        if counts.ok == 0 {
            failures.push("no request succeeded".to_owned());
        }
        let error_pct = error_pct(counts);
        if error_pct > global.max_error_pct {
            failures.push(format!(
                "{error_pct:.2} % of requests were errors (> --max-error-pct {})",
                global.max_error_pct
            ));
        }
        Self {
            scenario: input.scenario,
            seed: global.seed,
            run_tag: run_tag.to_owned(),
            url: global.url.clone(),
            mode,
            parameters: input.parameters,
            setup_secs: input.setup_secs,
            elapsed_secs: input.summary.elapsed.as_secs_f64(),
            units_started: input.summary.units_started,
            units_dropped: input.summary.units_dropped,
            interrupted: input.summary.interrupted,
            counts,
            requests_per_sec: counts.requests as f64 / secs,
            ok_per_sec: counts.ok as f64 / secs,
            server_cpu_us_per_request: input.summary.server.and_then(|u| u.cpu_us_per(counts.requests)),
            server_cpu_us_per_ok: input.summary.server.and_then(|u| u.cpu_us_per(counts.ok)),
            server: input.summary.server,
            latency_all: rec.overall(),
            operations: rec.op_reports(),
            windows: rec.window_reports(),
            extra: input.extra,
            passed: failures.is_empty(),
            failures,
        }
    }

    /// The human-readable summary.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let c = self.counts;
        let _ = writeln!(
            out,
            "scenario={} seed={} run_tag={} url={}",
            self.scenario, self.seed, self.run_tag, self.url
        );
        if let Some(setup) = self.setup_secs {
            let _ = writeln!(out, "setup: {setup:.2}s");
        }
        let _ = writeln!(
            out,
            "elapsed {:.2}s, units started {}, dropped {}{}",
            self.elapsed_secs,
            self.units_started,
            self.units_dropped,
            if self.interrupted { " (interrupted)" } else { "" }
        );
        let _ = writeln!(
            out,
            "requests {} (ok {}, rejected {}, errors {}), {:.1} req/s, {:.1} ok/s",
            c.requests, c.ok, c.rejected, c.errors, self.requests_per_sec, self.ok_per_sec
        );
        if let Some(server) = &self.server {
            let _ = writeln!(out, "{}", self.server_line(server));
        }
        let _ = writeln!(
            out,
            "{:<20} {:>9} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "operation", "ok", "rejected", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        let all = OpReport {
            op: "(all)".to_owned(),
            ok: c.ok,
            rejected: c.rejected,
            errors: c.errors,
            latency: self.latency_all,
            by_status: Default::default(),
        };
        for op in self.operations.iter().chain(std::iter::once(&all)) {
            let l = op.latency;
            let _ = writeln!(
                out,
                "{:<20} {:>9} {:>8} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                op.op, op.ok, op.rejected, op.errors, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            );
        }
        for op in &self.operations {
            for (status, sc) in &op.by_status {
                if !sc.sample_body.is_empty() {
                    let _ = writeln!(out, "  {} {status}: {} times, e.g. {}", op.op, sc.count, sc.sample_body);
                }
            }
        }
        if self.scenario == "soak" || self.windows.len() > 1 {
            let _ = writeln!(
                out,
                "{:<8} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "minute", "requests", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
            );
            for w in &self.windows {
                let l = w.latency;
                let _ = writeln!(
                    out,
                    "{:<8} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    w.minute, l.count, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
                );
            }
        }
        if !self.extra.is_null() {
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&self.extra).unwrap_or_default());
        }
        if self.passed {
            let _ = writeln!(out, "PASS");
        } else {
            for f in &self.failures {
                let _ = writeln!(out, "FAIL: {f}");
            }
        }
        out
    }

    /// `server CPU 64.2 us/request, 70.1 us/ok (2.57 s, from /proc/42/stat); RSS peak 96.0 MiB, final 90.1 MiB`.
    fn server_line(&self, server: &ServerUsage) -> String {
        let us = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
        let mut line = format!(
            "server CPU {} us/request, {} us/ok",
            us(self.server_cpu_us_per_request),
            us(self.server_cpu_us_per_ok)
        );
        match server.cpu_secs {
            Some(secs) => {
                let _ = write!(line, " ({secs:.2} s, from {})", server.describe_source());
            }
            None => {
                let _ = write!(line, " ({})", server.describe_source());
            }
        }
        let mib = |kib: Option<u64>| kib.map_or_else(|| "n/a".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let _ = write!(
            line,
            "; RSS peak {}, final {}",
            mib(server.rss_peak_kib),
            mib(server.rss_final_kib)
        );
        line
    }

    pub(crate) fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("serialising the report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

/// Unexpected errors as a percentage of all requests (0 when there were none).
pub(crate) fn error_pct(c: Counts) -> f64 {
    if c.requests == 0 {
        0.0
    } else {
        c.errors as f64 * 100.0 / c.requests as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_pct_handles_zero_requests() {
        assert_eq!(error_pct(Counts::default()), 0.0);
        let c = Counts {
            requests: 200,
            ok: 190,
            rejected: 8,
            errors: 2,
        };
        assert!((error_pct(c) - 1.0).abs() < 1e-9);
    }

    /// A report of 4 requests (3 ok, 1 rejected) whose measured phase cost the server `server`.
    fn report_with(server: Option<ServerUsage>) -> RunReport {
        use crate::recorder::{Class, Sample};
        use clap::Parser;
        use std::time::{Duration, Instant};
        let global = crate::cli::Cli::try_parse_from(["loadtest", "health"]).unwrap().global;
        let start = Instant::now();
        let rec = Recorder::new(start);
        for class in [Class::Ok, Class::Ok, Class::Ok, Class::Rejected] {
            rec.record(Sample {
                op: "op",
                intended: start,
                latency: Duration::from_millis(1),
                class,
                status: "200",
                body: "",
            });
        }
        let input = ReportInput {
            scenario: "health",
            parameters: Value::Null,
            setup_secs: None,
            summary: DriveSummary {
                elapsed: Duration::from_secs(1),
                server,
                ..Default::default()
            },
            extra: Value::Null,
            failures: vec![],
        };
        RunReport::build(&global, "tag", Value::Null, &rec, input)
    }

    #[test]
    fn server_cpu_per_request_is_in_the_table_and_the_json() {
        let server = ServerUsage {
            source: "proc",
            pid: Some(42),
            cpu_secs: Some(0.0002),
            rss_peak_kib: Some(2048),
            rss_final_kib: Some(1024),
        };
        let report = report_with(Some(server));
        let text = report.render();
        assert!(
            text.contains(
                "server CPU 50.0 us/request, 66.7 us/ok (0.00 s, from /proc/42/stat); RSS peak 2.0 MiB, final 1.0 MiB"
            ),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert!((json["server_cpu_us_per_request"].as_f64().unwrap() - 50.0).abs() < 1e-9);
        assert!((json["server_cpu_us_per_ok"].as_f64().unwrap() - 66.666).abs() < 1e-2);
        assert_eq!(json["server"]["rss_peak_kib"], 2048);
    }

    #[test]
    fn missing_server_cpu_is_n_a() {
        let server = ServerUsage {
            source: "metrics",
            ..Default::default()
        };
        let report = report_with(Some(server));
        let text = report.render();
        assert!(
            text.contains("server CPU n/a us/request, n/a us/ok (n/a: no --server-pid"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["server_cpu_us_per_request"].is_null());
        assert!(json["server_cpu_us_per_ok"].is_null());
    }
}
