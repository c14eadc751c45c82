//! Command-line interface: global flags shared by every scenario and one
//! subcommand per scenario with its own knobs.
//!
//! Every run is bounded twice, by time (`--duration-secs`) and by count
//! (`--requests` or the scenario's own count), so that it stops by itself.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load generator for the oms HTTP API.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,

    #[command(subcommand)]
    pub(crate) scenario: Scenario,
}

/// Flags that apply to every scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    /// Base URL of the server; all traffic goes only there.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,

    /// API key, sent as `Authorization: Bearer KEY`.
    #[arg(long, global = true, env = "OMS_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,

    /// Seed for the workload generator; the same seed gives the same workload.
    #[arg(long, global = true, default_value_t = 1)]
    pub(crate) seed: u64,

    /// Tag that makes SKUs of this run unique (default: `<seed>-<unix seconds>`).
    #[arg(long, global = true)]
    pub(crate) run_tag: Option<String>,

    /// Write the result as JSON to this file.
    #[arg(long, global = true)]
    pub(crate) json_out: Option<PathBuf>,

    /// Upper bound on the measured phase, in seconds (scenario default if absent).
    #[arg(long, global = true)]
    pub(crate) duration_secs: Option<u64>,

    /// Closed loop: this many concurrent workers, each waiting for its response.
    #[arg(long, global = true, default_value_t = 64)]
    pub(crate) connections: usize,

    /// Open loop: fixed arrival rate per second (overrides the closed loop).
    #[arg(long, global = true)]
    pub(crate) rate: Option<f64>,

    /// Open loop: at most this many units in flight; arrivals beyond it are dropped and counted.
    #[arg(long, global = true, default_value_t = 1024)]
    pub(crate) max_in_flight: usize,

    /// Upper bound on the number of units (requests or lifecycles) in the measured phase.
    #[arg(long, global = true, default_value_t = 10_000_000)]
    pub(crate) requests: u64,

    /// Timeout of one HTTP request, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000)]
    pub(crate) timeout_ms: u64,

    /// Exit non-zero when more than this percentage of requests are unexpected errors.
    #[arg(long, global = true, default_value_t = 1.0)]
    pub(crate) max_error_pct: f64,

    /// Suppress the once-a-second progress line on stderr.
    #[arg(long, global = true)]
    pub(crate) quiet: bool,

    /// Server process id: its CPU time and memory are read from /proc around the measured
    /// phase (without it, from `process_cpu_seconds_total` at the server's /metrics).
    #[arg(long, global = true)]
    pub(crate) server_pid: Option<u32>,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum Scenario {
    /// GET /healthz throughput: the HTTP-stack ceiling; `--requests 1` is a smoke check.
    Health,
    /// One SKU with K units, many concurrent buyers; verifies no overselling.
    FlashSale(FlashSaleArgs),
    /// Full order lifecycles: create, pay, fulfil, ship, deliver, return, refund.
    Lifecycle(LifecycleArgs),
    /// Read/write mix over many SKUs and four warehouses.
    Mixed(MixedArgs),
    /// Open-loop mixed traffic at a fixed rate for a long time; latency per minute, RSS drift.
    Soak(SoakArgs),
}

#[derive(Debug, Clone, Args)]
pub(crate) struct FlashSaleArgs {
    /// Units on hand for the sale (K), per SKU.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) stock: u64,

    /// Purchase attempts, spread over `--connections` workers.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) buyers: u64,

    /// SKUs the sale is spread over (buyer i buys SKU i mod N); 1 is the hot-SKU case.
    #[arg(long, default_value_t = 1)]
    pub(crate) skus: usize,

    /// Distinct customers: buyer i orders as `buyer-<i mod U>` (default: every buyer its own).
    #[arg(long)]
    pub(crate) users: Option<u64>,

    /// Runs the sale as a flash sale of the engine (`PUT /v1/sales/sale-<sku>`) with this
    /// `per_customer_limit`; over it a purchase is 409 `limit_exceeded` (a rejection).
    #[arg(long)]
    pub(crate) per_customer_limit: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct LifecycleArgs {
    /// SKUs stocked at both warehouses (plus as many stocked at only one, to force splits).
    #[arg(long, default_value_t = 50)]
    pub(crate) skus: usize,

    /// Units on hand per SKU and warehouse.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) stock: u64,

    /// Percentage of orders whose lines force a split across the two warehouses.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) split_pct: f64,

    /// Percentage of payments made with a declining token (expects 402).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) decline_pct: f64,

    /// Percentage of paid orders cancelled instead of fulfilled.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) cancel_pct: f64,

    /// Percentage of delivered orders that get a return (approved, received, restocked).
    #[arg(long, default_value_t = 20.0)]
    pub(crate) return_pct: f64,

    /// Percentage of received returns that get a partial refund.
    #[arg(long, default_value_t = 50.0)]
    pub(crate) refund_pct: f64,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct MixedArgs {
    /// SKUs to stock at each of the four warehouses during setup.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) skus: usize,

    /// Units on hand per SKU and warehouse.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) stock: u64,

    /// Percentage of operations that are reads.
    #[arg(long, default_value_t = 80.0)]
    pub(crate) read_pct: f64,

    /// Orders created during setup so that reads have something to read.
    #[arg(long, default_value_t = 200)]
    pub(crate) preload_orders: usize,
}

/// The soak takes `mixed`'s flags; with the global `--server-pid` it also samples the
/// server's VmRSS every 5 s.
#[derive(Debug, Clone, Args)]
pub(crate) struct SoakArgs {
    #[command(flatten)]
    pub(crate) mixed: MixedArgs,
}
