//! `loadtest`: a load generator for the oms HTTP API (shared/API.md).
//!
//! # Layout
//! - `cli`: flags and subcommands.
//! - `api`: the HTTP client; measures and classifies each request.
//! - `recorder`: HDR histograms per operation and per minute, counts per status.
//! - `schedule`: open-loop intended send times (coordinated-omission correction).
//! - `driver`: closed and open loops, bounds, progress line.
//! - `workload`: deterministic per-unit generation from the seed.
//! - `setup`: warehouses and stock through the API, concurrently.
//! - `scenario`: health, flash-sale, lifecycle, mixed, soak.
//! - `usage`: the server's CPU time and memory around the measured phase
//!   (from `procfs` with `--server-pid`, else from its `/metrics`).
//! - `report`: the summary table, the JSON file, pass or fail.

mod api;
mod cli;
mod driver;
mod exposition;
mod procfs;
mod recorder;
mod report;
mod scenario;
mod schedule;
mod setup;
mod usage;
mod workload;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use clap::Parser;

use crate::cli::{Cli, Global, Scenario};
use crate::report::RunReport;
use crate::scenario::Ctx;
use crate::schedule::{RATE_PER_SEC_MAX, RATE_PER_SEC_MIN};

/// Most closed-loop workers (and so connections) one run may open.
const CONNECTIONS_MAX: usize = 10_000;
/// Most open-loop units in flight.
const IN_FLIGHT_MAX: usize = 100_000;
/// Longest run, in seconds (one day).
const DURATION_SECS_MAX: u64 = 24 * 60 * 60;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn validate(g: &Global, scenario: &Scenario) -> Result<()> {
    ensure!(
        (1..=CONNECTIONS_MAX).contains(&g.connections),
        "--connections must be 1..={CONNECTIONS_MAX}"
    );
    ensure!(
        (1..=IN_FLIGHT_MAX).contains(&g.max_in_flight),
        "--max-in-flight must be 1..={IN_FLIGHT_MAX}"
    );
    if let Some(rate) = g.rate {
        ensure!(
            (RATE_PER_SEC_MIN..=RATE_PER_SEC_MAX).contains(&rate),
            "--rate must be {RATE_PER_SEC_MIN}..={RATE_PER_SEC_MAX} per second"
        );
    }
    if let Some(secs) = g.duration_secs {
        ensure!(
            (1..=DURATION_SECS_MAX).contains(&secs),
            "--duration-secs must be 1..={DURATION_SECS_MAX}"
        );
    }
    ensure!(g.requests >= 1, "--requests must be at least 1");
    ensure!(g.timeout_ms >= 1, "--timeout-ms must be at least 1");
    let pcts: Vec<(&str, f64)> = match scenario {
        Scenario::Lifecycle(a) => vec![
            ("--split-pct", a.split_pct),
            ("--decline-pct", a.decline_pct),
            ("--cancel-pct", a.cancel_pct),
            ("--return-pct", a.return_pct),
            ("--refund-pct", a.refund_pct),
        ],
        Scenario::Mixed(a) => vec![("--read-pct", a.read_pct)],
        Scenario::Soak(a) => vec![("--read-pct", a.mixed.read_pct)],
        Scenario::FlashSale(a) => {
            ensure!(a.buyers >= 1 && a.stock >= 1, "--buyers and --stock must be at least 1");
            let skus_max = scenario::flash_sale::SKUS_MAX;
            ensure!((1..=skus_max).contains(&a.skus), "--skus must be 1..={skus_max}");
            vec![]
        }
        Scenario::Health => vec![],
    };
    for (name, pct) in pcts {
        ensure!((0.0..=100.0).contains(&pct), "{name} must be 0..=100");
    }
    Ok(())
}

/// Runs the chosen scenario; `Ok(false)` when it ran but failed its checks.
async fn run(cli: Cli) -> Result<bool> {
    let g = cli.global;
    validate(&g, &cli.scenario)?;
    let run_tag = g.run_tag.clone().unwrap_or_else(|| {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!("{}-{secs}", g.seed)
    });
    let api = api::Api::new(
        &g.url,
        g.api_key.as_deref(),
        Duration::from_millis(g.timeout_ms),
        g.connections.max(g.max_in_flight.min(CONNECTIONS_MAX)),
    )?;
    let usage = usage::UsageProbe::new(api.clone(), g.server_pid)?;
    let ctx = Ctx {
        api,
        global: g.clone(),
        run_tag: run_tag.clone(),
        usage,
    };
    let (rec, input) = match &cli.scenario {
        Scenario::Health => scenario::health::run(&ctx).await?,
        Scenario::FlashSale(a) => scenario::flash_sale::run(&ctx, a).await?,
        Scenario::Lifecycle(a) => scenario::lifecycle::run(&ctx, a).await?,
        Scenario::Mixed(a) => scenario::mixed::run(&ctx, a).await?,
        Scenario::Soak(a) => scenario::soak::run(&ctx, a).await?,
    };
    let mode = match &cli.scenario {
        Scenario::Soak(_) => scenario::soak::mode(&ctx),
        _ => ctx.mode(),
    };
    let report = RunReport::build(&g, &run_tag, Ctx::mode_json(mode), &rec, input);
    print!("{}", report.render());
    if let Some(path) = &g.json_out {
        report.write_json(path)?;
    }
    Ok(report.passed)
}
