//! `soak`: the `mixed` workload in open loop at a fixed `--rate` for a long
//! time. Reports latency per one-minute window and, with the global `--server-pid`,
//! the server's resident memory sampled every 5 s and its drift over the run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::cli::SoakArgs;
use crate::driver::Mode;
use crate::procfs;
use crate::recorder::Recorder;
use crate::report::ReportInput;
use crate::scenario::Ctx;
use crate::scenario::mixed::{self, Mixed};

/// Default length of the soak, in seconds.
const DURATION_SECS_DEFAULT: u64 = 600;
/// Default arrival rate when `--rate` is absent, per second.
const RATE_PER_SEC_DEFAULT: f64 = 100.0;
/// Interval between memory samples.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Serialize)]
struct RssSample {
    at_secs: f64,
    rss_kib: u64,
}

fn read_rss_kib(pid: u32) -> Option<u64> {
    procfs::read_status_kib(pid, "VmRSS")
}

/// Drift summary of the samples: first, last, max and last minus first, in KiB.
fn rss_summary(samples: &[RssSample]) -> serde_json::Value {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return serde_json::Value::Null;
    };
    let max = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    json!({
        "first_kib": first.rss_kib,
        "last_kib": last.rss_kib,
        "max_kib": max,
        "drift_kib": last.rss_kib as i64 - first.rss_kib as i64,
        "samples": samples,
    })
}

pub(crate) async fn run(ctx: &Ctx, args: &SoakArgs) -> Result<(Arc<Recorder>, ReportInput)> {
    let server_pid = ctx.global.server_pid;
    if let Some(pid) = server_pid {
        anyhow::ensure!(read_rss_kib(pid).is_some(), "cannot read VmRSS of process {pid}");
    }
    let (pool, setup_secs) = mixed::set_up(ctx, &args.mixed).await?;
    let rec = ctx.measuring_recorder().await;
    let workload = Arc::new(Mixed {
        api: ctx.api.clone(),
        rec: rec.clone(),
        seed: ctx.global.seed,
        run_tag: ctx.run_tag.clone(),
        n_skus: args.mixed.skus,
        read_pct: args.mixed.read_pct,
        pool: pool.clone(),
    });

    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = server_pid.map(|pid| {
        let samples = samples.clone();
        let start = rec.start();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RSS_SAMPLE_INTERVAL);
            loop {
                ticker.tick().await;
                let Some(rss_kib) = read_rss_kib(pid) else {
                    eprintln!("soak: process {pid} is gone; memory sampling stops");
                    return;
                };
                samples.lock().expect("rss lock poisoned").push(RssSample {
                    at_secs: start.elapsed().as_secs_f64(),
                    rss_kib,
                });
            }
        })
    });

    let summary = ctx
        .drive(
            workload,
            rec.clone(),
            mode(ctx),
            ctx.limits(DURATION_SECS_DEFAULT, u64::MAX),
        )
        .await;
    if let Some(sampler) = sampler {
        sampler.abort();
        if let Some(pid) = server_pid
            && let Some(rss_kib) = read_rss_kib(pid)
        {
            samples.lock().expect("rss lock poisoned").push(RssSample {
                at_secs: rec.start().elapsed().as_secs_f64(),
                rss_kib,
            });
        }
    }
    let samples = samples.lock().expect("rss lock poisoned").clone();
    let mut failures = Vec::new();
    if summary.units_dropped > 0 {
        failures.push(format!(
            "{} arrivals dropped: more than --max-in-flight {} units were running",
            summary.units_dropped, ctx.global.max_in_flight
        ));
    }
    let input = ReportInput {
        scenario: "soak",
        parameters: json!({"mixed": mixed::parameters(&args.mixed), "server_pid": server_pid}),
        setup_secs: Some(setup_secs),
        summary,
        extra: json!({"rss": rss_summary(&samples), "orders_in_pool": pool.len()}),
        failures,
    };
    Ok((rec, input))
}

/// The soak always runs open loop, whatever `--rate` says.
pub(crate) fn mode(ctx: &Ctx) -> Mode {
    Mode::Open {
        rate_per_sec: ctx.global.rate.unwrap_or(RATE_PER_SEC_DEFAULT),
        max_in_flight: ctx.global.max_in_flight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_drift() {
        let s = [
            RssSample {
                at_secs: 0.0,
                rss_kib: 100,
            },
            RssSample {
                at_secs: 5.0,
                rss_kib: 180,
            },
            RssSample {
                at_secs: 10.0,
                rss_kib: 150,
            },
        ];
        let sum = rss_summary(&s);
        assert_eq!(sum["drift_kib"], 50);
        assert_eq!(sum["max_kib"], 180);
        assert!(rss_summary(&[]).is_null());
    }
}
