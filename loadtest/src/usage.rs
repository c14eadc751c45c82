//! What the server spent during the measured phase: CPU seconds and resident memory, so a
//! run can report server CPU per request next to its throughput.
//!
//! On this kind of machine (server and generator sharing two cores with other work) CPU time
//! per request is a steadier figure than throughput. Two sources, best first:
//! - `--server-pid PID`: `utime + stime` of `/proc/PID/stat` (converted with the clock tick
//!   rate) and `VmHWM` / `VmRSS` of `/proc/PID/status`. Exact and free for the server.
//! - otherwise the server's `/metrics`: `process_cpu_seconds_total` and
//!   `process_resident_memory_bytes`, the standard process metrics. When the server does not
//!   expose them the figures are missing ("n/a"); the run does not fail for it.
//!
//! A reading is taken just before the measured phase starts and just after it ends, so setup,
//! warm-up and verification are not charged to the requests.

use anyhow::{Result, ensure};
use serde::Serialize;

use crate::api::{Api, Req};
use crate::exposition::parse_metric;
use crate::procfs;

/// The standard Prometheus name of a process's user + system CPU time, in seconds.
pub(crate) const METRIC_CPU_SECONDS: &str = "process_cpu_seconds_total";
/// The standard Prometheus name of a process's resident memory, in bytes.
pub(crate) const METRIC_RSS_BYTES: &str = "process_resident_memory_bytes";

/// Where the readings come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Proc { pid: u32, ticks_per_sec: u64 },
    Metrics,
}

/// Takes readings of the server's usage.
#[derive(Clone)]
pub(crate) struct UsageProbe {
    source: Source,
    api: Api,
}

/// One reading; each part is missing when it could not be taken.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Reading {
    pub(crate) cpu_secs: Option<f64>,
    pub(crate) rss_kib: Option<u64>,
    /// Highest resident memory since the process started (`VmHWM`); `/proc` only.
    pub(crate) rss_peak_kib: Option<u64>,
}

/// The server's usage over the measured phase, as reported.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub(crate) struct ServerUsage {
    /// `"proc"` (from `--server-pid`) or `"metrics"` (from `/metrics`).
    pub(crate) source: &'static str,
    pub(crate) pid: Option<u32>,
    /// CPU seconds (user + system) the server used during the measured phase.
    pub(crate) cpu_secs: Option<f64>,
    /// Peak resident memory since the server started (`VmHWM`), at the end of the phase.
    pub(crate) rss_peak_kib: Option<u64>,
    /// Resident memory at the end of the phase.
    pub(crate) rss_final_kib: Option<u64>,
}

impl UsageProbe {
    /// Reads `/proc` when `server_pid` is given (and fails now if that process cannot be read),
    /// else scrapes `/metrics` through `api`.
    pub(crate) fn new(api: Api, server_pid: Option<u32>) -> Result<Self> {
        let source = match server_pid {
            Some(pid) => {
                ensure!(
                    procfs::read_cpu_ticks(pid).is_some(),
                    "--server-pid {pid}: cannot read /proc/{pid}/stat (no such process?)"
                );
                Source::Proc {
                    pid,
                    ticks_per_sec: procfs::clock_ticks_per_sec(),
                }
            }
            None => Source::Metrics,
        };
        Ok(Self { source, api })
    }

    pub(crate) async fn read(&self) -> Reading {
        match self.source {
            Source::Proc { pid, ticks_per_sec } => Reading {
                cpu_secs: procfs::read_cpu_ticks(pid).map(|t| t as f64 / ticks_per_sec as f64),
                rss_kib: procfs::read_status_kib(pid, "VmRSS"),
                rss_peak_kib: procfs::read_status_kib(pid, "VmHWM"),
            },
            Source::Metrics => match self.api.send(&Req::get("/metrics")).await {
                Ok(reply) if reply.status.is_success() => Reading {
                    cpu_secs: parse_metric(&reply.text, METRIC_CPU_SECONDS),
                    rss_kib: parse_metric(&reply.text, METRIC_RSS_BYTES).map(|b| (b / 1024.0) as u64),
                    rss_peak_kib: None,
                },
                _ => Reading::default(),
            },
        }
    }

    /// The usage between two readings of this probe.
    pub(crate) fn between(&self, before: Reading, after: Reading) -> ServerUsage {
        let (source, pid) = match self.source {
            Source::Proc { pid, .. } => ("proc", Some(pid)),
            Source::Metrics => ("metrics", None),
        };
        ServerUsage {
            source,
            pid,
            cpu_secs: before
                .cpu_secs
                .zip(after.cpu_secs)
                .map(|(b, a)| a - b)
                .filter(|d| *d >= 0.0),
            rss_peak_kib: after.rss_peak_kib,
            rss_final_kib: after.rss_kib,
        }
    }
}

impl ServerUsage {
    /// Server CPU microseconds per unit of `n` (requests, successes); `None` without a CPU
    /// figure or without any unit.
    pub(crate) fn cpu_us_per(&self, n: u64) -> Option<f64> {
        self.cpu_secs.filter(|_| n > 0).map(|s| s * 1e6 / n as f64)
    }

    /// Where the CPU figure came from, or why there is none.
    pub(crate) fn describe_source(&self) -> String {
        match (self.source, self.pid, self.cpu_secs) {
            ("proc", Some(pid), Some(_)) => format!("/proc/{pid}/stat"),
            ("proc", Some(pid), None) => format!("n/a: /proc/{pid} could not be read after the run"),
            (_, _, Some(_)) => format!("{METRIC_CPU_SECONDS} at /metrics"),
            _ => format!("n/a: no --server-pid and no {METRIC_CPU_SECONDS} at /metrics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total_extra 99
process_cpu_seconds_total 12.34
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.048576e+07
oms_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 42 1700000000000
";

    fn usage(cpu_secs: Option<f64>) -> ServerUsage {
        ServerUsage {
            source: "proc",
            pid: Some(7),
            cpu_secs,
            ..Default::default()
        }
    }

    #[test]
    fn cpu_per_request_in_microseconds() {
        assert_eq!(usage(Some(2.0)).cpu_us_per(40_000), Some(50.0));
        assert_eq!(usage(Some(2.0)).cpu_us_per(0), None);
        assert_eq!(usage(None).cpu_us_per(10), None);
    }

    #[test]
    fn usage_between_readings_is_the_difference() {
        let probe = UsageProbe {
            source: Source::Proc {
                pid: 7,
                ticks_per_sec: 100,
            },
            api: Api::new("http://127.0.0.1:1", None, std::time::Duration::from_secs(1), 1).unwrap(),
        };
        let before = Reading {
            cpu_secs: Some(1.5),
            rss_kib: Some(100),
            rss_peak_kib: Some(100),
        };
        let after = Reading {
            cpu_secs: Some(4.0),
            rss_kib: Some(150),
            rss_peak_kib: Some(180),
        };
        let u = probe.between(before, after);
        assert_eq!(u.cpu_secs, Some(2.5));
        assert_eq!((u.rss_peak_kib, u.rss_final_kib), (Some(180), Some(150)));
        // A missing reading on either side, or a counter that went backwards (the server was
        // restarted in between), gives no CPU figure rather than a wrong one.
        assert_eq!(probe.between(Reading::default(), after).cpu_secs, None);
        assert_eq!(probe.between(after, before).cpu_secs, None);
        assert!(u.describe_source().contains("/proc/7/stat"));
        assert!(
            probe
                .between(Reading::default(), Reading::default())
                .describe_source()
                .starts_with("n/a")
        );
    }

    /// Serves every request on a local socket with `status` and `body`; returns its URL.
    async fn canned_server(status: &'static str, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    fn metrics_probe(url: &str) -> UsageProbe {
        let api = Api::new(url, None, std::time::Duration::from_secs(5), 1).unwrap();
        UsageProbe::new(api, None).unwrap()
    }

    #[tokio::test]
    async fn without_a_pid_the_server_metrics_are_scraped() {
        let probe = metrics_probe(&canned_server("200 OK", METRICS).await);
        let r = probe.read().await;
        assert_eq!(r.cpu_secs, Some(12.34));
        assert_eq!(r.rss_kib, Some(10_240));
        assert_eq!(probe.between(r, r).source, "metrics");
        assert!(probe.between(r, r).describe_source().contains(METRIC_CPU_SECONDS));
    }

    #[tokio::test]
    async fn a_server_without_process_metrics_gives_n_a_not_an_error() {
        let without = "# TYPE oms_ready gauge\noms_ready 1\n";
        for probe in [
            metrics_probe(&canned_server("200 OK", without).await),
            metrics_probe(&canned_server("404 Not Found", "").await),
        ] {
            let r = probe.read().await;
            assert_eq!(r, Reading::default());
            let u = probe.between(r, r);
            assert_eq!(u.cpu_us_per(1_000), None);
            assert!(u.describe_source().starts_with("n/a"), "{}", u.describe_source());
        }
    }

    #[test]
    fn an_unreadable_pid_is_refused_up_front() {
        let api = Api::new("http://127.0.0.1:1", None, std::time::Duration::from_secs(1), 1).unwrap();
        // Above the kernel's pid_max (at most 2^22), so no such process.
        let err = UsageProbe::new(api, Some(u32::MAX)).err().unwrap();
        assert!(err.to_string().contains("--server-pid"), "{err}");
    }
}
