//! The scenarios, one module each, and the context they share.
//!
//! Each scenario sets up what it needs through the API, builds a
//! [`Workload`](crate::driver::Workload), drives it and returns a report
//! input with its own verification results.

pub(crate) mod flash_sale;
pub(crate) mod health;
pub(crate) mod lifecycle;
pub(crate) mod mixed;
pub(crate) mod soak;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::cli::Global;
use crate::driver::{self, DriveSummary, Limits, Mode, Workload};
use crate::recorder::Recorder;
use crate::usage::UsageProbe;

/// Unmeasured requests per connection before the measured phase.
const WARM_UP_REQUESTS_PER_CONNECTION: usize = 2;

/// Everything a scenario needs from the command line.
pub(crate) struct Ctx {
    pub(crate) api: Api,
    pub(crate) global: Global,
    /// Makes this run's SKUs unique on a server that keeps earlier runs' data.
    pub(crate) run_tag: String,
    /// Reads the server's CPU time and memory around the measured phase.
    pub(crate) usage: UsageProbe,
}

impl Ctx {
    /// Closed loop unless `--rate` is given.
    pub(crate) fn mode(&self) -> Mode {
        match self.global.rate {
            Some(rate_per_sec) => Mode::Open {
                rate_per_sec,
                max_in_flight: self.global.max_in_flight,
            },
            None => Mode::Closed {
                connections: self.global.connections,
            },
        }
    }

    pub(crate) fn mode_json(mode: Mode) -> Value {
        match mode {
            Mode::Closed { connections } => json!({"loop": "closed", "connections": connections}),
            Mode::Open {
                rate_per_sec,
                max_in_flight,
            } => json!({"loop": "open", "rate_per_sec": rate_per_sec, "max_in_flight": max_in_flight}),
        }
    }

    /// The measured phase's bounds: `--duration-secs` (else the scenario's
    /// default) and the smaller of `--requests` and the scenario's own count.
    pub(crate) fn limits(&self, default_duration_secs: u64, units_max: u64) -> Limits {
        Limits {
            duration: Duration::from_secs(self.global.duration_secs.unwrap_or(default_duration_secs)),
            units_max: units_max.min(self.global.requests),
        }
    }

    /// A recorder whose clock starts now.
    pub(crate) fn recorder() -> Arc<Recorder> {
        Arc::new(Recorder::new(Instant::now()))
    }

    /// The recorder of the measured phase: first opens `--connections`
    /// keep-alive connections (unmeasured `GET /healthz`, answers ignored),
    /// then starts the clock. Without this the first second of a run pays for
    /// connection setup: an open loop at 10,000/s opened ~290 connections in
    /// its first second and that burst alone set the p99 of a 10 s run.
    pub(crate) async fn measuring_recorder(&self) -> Arc<Recorder> {
        let mut warm = tokio::task::JoinSet::new();
        for _ in 0..self.global.connections.max(1) {
            let api = self.api.clone();
            warm.spawn(async move {
                for _ in 0..WARM_UP_REQUESTS_PER_CONNECTION {
                    let _ = api.send(&Req::get("/healthz")).await;
                }
            });
        }
        while warm.join_next().await.is_some() {}
        Self::recorder()
    }

    /// Runs the measured phase, with a reading of the server's usage just before and just
    /// after it (so setup, warm-up and verification are not charged to its requests).
    pub(crate) async fn drive<W: Workload>(
        &self,
        workload: Arc<W>,
        rec: Arc<Recorder>,
        mode: Mode,
        limits: Limits,
    ) -> DriveSummary {
        let before = self.usage.read().await;
        let mut summary = driver::drive(workload, rec, mode, limits, !self.global.quiet).await;
        let after = self.usage.read().await;
        summary.server = Some(self.usage.between(before, after));
        summary
    }
}
