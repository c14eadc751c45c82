//! The `oms` command line and the server's life: parse flags, check the configuration, listen,
//! recover the engine while `/healthz` already answers, serve, and shut down gracefully.
//!
//! Startup order matters: the socket is bound first (so a port in use fails fast and probes
//! can watch recovery), then the engine is opened, and only then is it handed to the API
//! (`/readyz` turns 200). Shutdown is the reverse: stop accepting, end event streams, drain
//! in-flight requests (bounded), then flush and close the log.

use crate::api::state::{IN_FLIGHT_REQUESTS_MAX_DEFAULT, REQUEST_TIMEOUT_MS_DEFAULT};
use crate::api::token::{STREAM_TOKEN_TTL_MS_DEFAULT, STREAM_TOKEN_TTL_MS_MAX, StreamTokens};
use crate::api::{ApiConfig, AppState, app};
use crate::cluster::{ClusterArgs, ClusterConfig, ClusterStatus, Replicator, become_primary};
use crate::engine::{Engine, EngineConfig, EngineError, SimulatedGateway, SystemClock};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for in-flight requests to finish after a shutdown signal, in seconds.
pub const SHUTDOWN_GRACE_SECS: u64 = 30;

/// The comma-separated API keys' variable. Not a flag: a flag's value shows in the process list.
pub const API_KEYS_ENV: &str = "OMS_API_KEYS";

#[derive(Parser, Debug)]
#[command(
    name = "oms",
    version,
    about = "Order management engine: an HTTP API over an actor engine with a write-ahead log",
    long_about = "Order management engine: an HTTP API over an actor engine with a write-ahead log.\n\n\
        Without a subcommand, `oms` is `oms serve` with the same flags.\n\n\
        API keys come from the environment only: OMS_API_KEYS=key1,key2. Without keys the server \
        refuses to listen on anything but a loopback address.",
    after_help = ENV_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The environment variables that are not a flag's, shown after every flag's own `[env: …]`
/// in `--help`.
pub const ENV_HELP: &str = "Environment variables:
  OMS_API_KEYS  Comma-separated API keys; with any, every request but /healthz and /readyz needs
                `Authorization: Bearer KEY` (event streams also take a stream token). Without
                keys the server only listens on a loopback address. Not a flag: a flag's value is
                visible in the process list.
  RUST_LOG      Log filter, e.g. `info` (the default), `oms=debug`, `warn`.
Every flag above also reads the variable in its [env: …].";

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once at start; boxing would only add noise
pub enum Command {
    /// Recover from the data directory and serve the HTTP API (the default command).
    #[command(after_help = ENV_HELP)]
    Serve(ServeArgs),
    /// The PostgreSQL read model (docs/READ_MODEL.md).
    #[command(subcommand)]
    ReadModel(ReadModelCommand),
}

#[derive(Subcommand, Debug)]
pub enum ReadModelCommand {
    /// Empty the read model's tables and write them again from the newest snapshot and the log
    /// (one transaction). Opens the data directory: stop the server first.
    Rebuild(RebuildArgs),
    /// Forget the read model's log subscriber, so the log stops keeping records for it (after
    /// turning the read model off for good). Opens the data directory: stop the server first.
    Forget(ForgetArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ForgetArgs {
    /// Data directory of the engine.
    #[arg(long, env = "OMS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RebuildArgs {
    /// Data directory of the engine whose log is projected.
    #[arg(long, env = "OMS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The read model's database: `postgres://user:password@host:port/database`.
    #[arg(long, env = "OMS_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: String,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, env = "OMS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Data directory (log segments, snapshots, lock file); created if missing.
    #[arg(long, env = "OMS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Log durability: `always` (fsync before acknowledging), `interval:MS` (fsync at least
    /// every MS milliseconds; a crash may lose that much acknowledged data), `none` (tests).
    #[arg(long, env = "OMS_SYNC", default_value = "always", value_parser = parse_sync)]
    pub sync: wal::SyncPolicy,
    /// Take a snapshot after this many log records.
    #[arg(long, env = "OMS_SNAPSHOT_EVERY_RECORDS", default_value_t = EngineConfig::default().snapshot_every_records)]
    pub snapshot_every_records: u64,
    /// Take a snapshot after this many seconds if anything was logged since the last one.
    #[arg(long, env = "OMS_SNAPSHOT_EVERY_SECS", default_value_t = EngineConfig::default().snapshot_every_ms / 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_every_secs: u64,
    /// Requests handled at once; a request beyond it is answered 503 at once (load shedding).
    #[arg(long, env = "OMS_MAX_IN_FLIGHT_REQUESTS", default_value_t = IN_FLIGHT_REQUESTS_MAX_DEFAULT as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight_requests: u64,
    /// Seconds a request may take before it is answered 503 (event streams are not limited).
    #[arg(long, env = "OMS_REQUEST_TIMEOUT_SECS", default_value_t = REQUEST_TIMEOUT_MS_DEFAULT / 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Log format on stderr.
    #[arg(long, env = "OMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Most stored idempotent responses; past it the oldest are forgotten before 24 h.
    #[arg(long, env = "OMS_IDEMPOTENCY_KEYS_MAX", default_value_t = EngineConfig::default().idempotency.keys_max as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_keys_max: u64,
    /// Most bytes of stored idempotent responses; past it the oldest are forgotten before 24 h.
    #[arg(long, env = "OMS_IDEMPOTENCY_BYTES_MAX", default_value_t = EngineConfig::default().idempotency.bytes_max)]
    pub idempotency_bytes_max: u64,
    /// Most bytes of records kept for event streams that are behind (beyond, they are cut off).
    #[arg(long, env = "OMS_FEED_BYTES_MAX", default_value_t = EngineConfig::default().feed_bytes_max as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub feed_bytes_max: u64,
    /// Most event streams replaying history from the log at once (beyond: 503, Retry-After).
    #[arg(long, env = "OMS_STREAM_REPLAYS_MAX", default_value_t = EngineConfig::default().stream_replays_max as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_replays_max: u64,
    /// PostgreSQL read model: project the log into this database
    /// (`postgres://user:password@host:port/database`). Off when absent. Prefer the environment
    /// variable: a flag's value (and its password) is visible in the process list.
    #[arg(long, env = "OMS_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Seconds a stream token (`POST /v1/stream-tokens`) is accepted for, 1 to 3600.
    #[arg(long, env = "OMS_STREAM_TOKEN_TTL_SECS", default_value_t = STREAM_TOKEN_TTL_MS_DEFAULT / 1000,
          value_parser = clap::value_parser!(u64).range(1..=STREAM_TOKEN_TTL_MS_MAX / 1000))]
    pub stream_token_ttl_secs: u64,
    /// Most bytes of log segments kept for durable subscribers (the event relays) that are
    /// behind, beyond what snapshots need; past it the oldest are deleted, an error is logged
    /// and `oms_subscriber_retention_exceeded_total` counts it.
    #[arg(long, env = "OMS_SUBSCRIBER_RETENTION_BYTES_MAX", default_value_t = crate::engine::SUBSCRIBER_RETENTION_BYTES_MAX)]
    pub subscriber_retention_bytes_max: u64,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// RabbitMQ relay: publish every event to this broker (`amqp://user:pass@host:5672/%2f`); off
    /// when absent. Prefer the variable: a flag's value (and its password) shows in the process list.
    #[arg(long, env = "OMS_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// The durable topic exchange the RabbitMQ relay publishes to (declared if missing).
    #[arg(long, env = "OMS_AMQP_EXCHANGE", default_value = crate::relay::amqp::EXCHANGE_DEFAULT,
          value_parser = crate::integrations::parse_exchange)]
    pub amqp_exchange: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_sync(s: &str) -> Result<wal::SyncPolicy, String> {
    match s {
        "always" => Ok(wal::SyncPolicy::Always),
        "none" => Ok(wal::SyncPolicy::None),
        _ => match s.strip_prefix("interval:").map(str::parse::<u64>) {
            Some(Ok(ms)) if ms > 0 => Ok(wal::SyncPolicy::Interval { interval_ms: ms }),
            _ => Err("expected always, none or interval:MS (MS > 0)".into()),
        },
    }
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unusable (exit code 2).
    #[error("{0}")]
    Config(String),
    /// Recovery or serving failed (exit code 1).
    #[error("{0}")]
    Runtime(String),
}

impl ServerError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ServerError::Config(_) => 2,
            ServerError::Runtime(_) => 1,
        }
    }
}

impl Cli {
    /// The serve arguments, whether given to `oms serve` or to `oms` alone.
    pub fn serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(a)) => a,
            // `main` runs the other commands before asking for serve arguments.
            Some(Command::ReadModel(_)) | None => self.serve,
        }
    }
}

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`), stderr, text or JSON.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second call (tests) leaves the first subscriber in place.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// API keys from `OMS_API_KEYS`: comma-separated, blanks dropped.
pub fn api_keys_from_env() -> Vec<String> {
    std::env::var(API_KEYS_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// Checks that `dir` exists (creating it) and that files can be created in it.
fn check_data_dir(dir: &Path) -> Result<(), ServerError> {
    let unusable =
        |e: std::io::Error| ServerError::Config(format!("data directory {} is not writable: {e}", dir.display()));
    // Durably: a directory whose own entry is lost in a power cut takes its log with it.
    wal::create_dir_durable(dir).map_err(unusable)?;
    let probe = dir.join(format!(".oms-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe").map_err(unusable)?;
    std::fs::remove_file(&probe).map_err(unusable)?;
    // Refuse a directory another oms holds before binding the port, so the second process never
    // answers a probe. The engine takes the lock for real when it opens (a process that wins
    // the directory in between is still refused there, with the same message).
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(unusable)?;
    if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
        return Err(ServerError::Config(EngineError::Locked(dir.to_path_buf()).to_string()));
    }
    Ok(())
}

/// Runs the server until SIGTERM or SIGINT: listens first (so `/healthz` answers during
/// recovery), recovers, marks the API ready, and on a signal drains and flushes the log.
pub async fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let cluster = ClusterConfig::from_args(&args.cluster, &args.listen).map_err(ServerError::Config)?;
    let (listener, state) = listen(&args).await?;
    let signals = tokio::spawn(wait_for_signal(state.clone()));
    let mut stopping = state.shutdown_signal();
    let server = {
        let mut stop = state.shutdown_signal();
        let router = app(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        })
    };
    let started = Instant::now();
    let engine = tokio::select! {
        r = recover(&args, cluster.as_ref(), &state) => r,
        _ = stopping.wait_for(|s| *s) => {
            tracing::info!("shutdown requested during recovery");
            return Ok(());
        }
    };
    let engine = match engine {
        Ok(e) => e,
        Err(e) => {
            state.begin_shutdown();
            let _ = server.await;
            return Err(e);
        }
    };
    let stats = engine.stats();
    state.set_engine(engine.clone());
    let integrations = crate::integrations::Integrations {
        postgres_url: args.postgres_url.as_deref(),
        amqp_url: args.amqp_url.as_deref(),
        amqp_exchange: &args.amqp_exchange,
    };
    crate::integrations::start(integrations, &state, &engine);
    tracing::info!(
        recovered_records = stats.recovered_records,
        orders = stats.orders,
        recovery_ms = started.elapsed().as_millis() as u64,
        "ready"
    );

    let _ = stopping.wait_for(|s| *s).await;
    tracing::info!("shutting down: draining in-flight requests");
    match tokio::time::timeout(Duration::from_secs(SHUTDOWN_GRACE_SECS), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "server failed"),
        Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
        Err(_) => tracing::warn!(
            grace_secs = SHUTDOWN_GRACE_SECS,
            "in-flight requests did not finish in time"
        ),
    }
    signals.abort();
    engine
        .shutdown()
        .await
        .map_err(|e| ServerError::Runtime(format!("the log could not be flushed on shutdown: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// `oms read-model …`.
pub async fn read_model(command: ReadModelCommand) -> Result<(), ServerError> {
    match command {
        ReadModelCommand::Rebuild(args) => rebuild_read_model(args).await,
        ReadModelCommand::Forget(args) => forget_read_model(args).await,
    }
}

/// Opens the engine on `data_dir` (recovery) for a maintenance command.
async fn open_for_maintenance(data_dir: &Path) -> Result<Engine, ServerError> {
    check_data_dir(data_dir)?;
    let config = EngineConfig {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let open = Engine::open(config, Arc::new(SystemClock), Arc::new(SimulatedGateway::default()));
    open.await.map_err(|e| match e {
        EngineError::Locked(_) => ServerError::Config(e.to_string()),
        other => ServerError::Runtime(format!("recovery failed: {other}")),
    })
}

/// Removes the `read-model` log subscriber and its retention pin.
async fn forget_read_model(args: ForgetArgs) -> Result<(), ServerError> {
    let engine = open_for_maintenance(&args.data_dir).await?;
    let removed = engine
        .remove_subscriber(crate::read_model::SUBSCRIBER_NAME)
        .await
        .map_err(|e| ServerError::Runtime(format!("cannot remove the subscriber: {e}")));
    let closed = engine.shutdown().await;
    let removed = removed?;
    closed.map_err(|e| ServerError::Runtime(format!("the log could not be closed: {e}")))?;
    println!(
        "{}",
        if removed {
            "read model subscriber forgotten"
        } else {
            "no read model subscriber was registered"
        }
    );
    Ok(())
}

/// Opens the engine (recovery), rebuilds the read model from it, and closes it again.
async fn rebuild_read_model(args: RebuildArgs) -> Result<(), ServerError> {
    let engine = open_for_maintenance(&args.data_dir).await?;
    let rebuilt = crate::read_model::rebuild::rebuild(&engine, &args.postgres_url).await;
    let closed = engine.shutdown().await;
    let position = rebuilt.map_err(|e| ServerError::Runtime(format!("read model rebuild failed: {e}")))?;
    closed.map_err(|e| ServerError::Runtime(format!("the log could not be closed: {e}")))?;
    println!("read model rebuilt at record {position}");
    Ok(())
}

/// Checks the configuration that needs no engine and binds the listener: a configuration
/// error exits before anything is opened.
async fn listen(args: &ServeArgs) -> Result<(tokio::net::TcpListener, AppState), ServerError> {
    let addr = listen_addr(&args.listen)?;
    let api_keys = api_keys_from_env();
    if api_keys.is_empty() && !addr.ip().is_loopback() {
        return Err(ServerError::Config(format!(
            "refusing to listen on {addr} without API keys: set {API_KEYS_ENV} or listen on a loopback address"
        )));
    }
    check_data_dir(&args.data_dir)?;
    let ttl_ms = args.stream_token_ttl_secs.saturating_mul(1000);
    let stream_tokens = StreamTokens::in_dir(&args.data_dir, ttl_ms).map_err(|e| {
        ServerError::Config(format!(
            "cannot read or create the stream token secret {}: {e}",
            args.data_dir.join(crate::api::token::SECRET_FILE).display()
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Config(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Runtime(format!("cannot read the listen address: {e}")))?;
    let state = AppState::new(ApiConfig {
        api_keys,
        in_flight_requests_max: usize::try_from(args.max_in_flight_requests).unwrap_or(usize::MAX),
        request_timeout_ms: args.request_timeout_secs.saturating_mul(1000),
        stream_tokens: Some(stream_tokens),
    });
    tracing::info!(
        addr = %local,
        protected = !state_is_open(&state),
        "listening on {local}"
    );
    Ok((listener, state))
}

/// The address to listen on: `IP:PORT`, or `HOST:PORT` resolved (`localhost:8080`), taking
/// the first address the name resolves to (IPv4 first, as `localhost` is usually meant).
fn listen_addr(listen: &str) -> Result<SocketAddr, ServerError> {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let invalid = |why: String| {
        ServerError::Config(format!(
            "invalid listen address {listen:?}: expected IP:PORT or HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080{why}"
        ))
    };
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(listen)
        .map_err(|e| invalid(format!(" ({e})")))?
        .collect();
    let first = resolved.iter().find(|a| a.is_ipv4()).or_else(|| resolved.first());
    first
        .copied()
        .ok_or_else(|| invalid(" (the name resolves to no address)".into()))
}

/// Opens the engine as the flags configure it; a locked data directory is a configuration
/// error (exit 2), any other failure a runtime one (exit 1).
async fn recover(args: &ServeArgs, cluster: Option<&ClusterConfig>, state: &AppState) -> Result<Engine, ServerError> {
    let mut config = EngineConfig {
        data_dir: args.data_dir.clone(),
        wal: wal::WalConfig {
            sync: args.sync,
            ..Default::default()
        },
        snapshot_every_records: args.snapshot_every_records,
        snapshot_every_ms: args.snapshot_every_secs.saturating_mul(1000),
        idempotency: crate::engine::IdempotencyLimits {
            keys_max: usize::try_from(args.idempotency_keys_max).unwrap_or(usize::MAX),
            bytes_max: args.idempotency_bytes_max,
        },
        feed_bytes_max: usize::try_from(args.feed_bytes_max).unwrap_or(usize::MAX),
        stream_replays_max: usize::try_from(args.stream_replays_max).unwrap_or(usize::MAX),
        subscriber_retention_bytes_max: args.subscriber_retention_bytes_max,
        ..Default::default()
    };
    if let Some(cluster) = cluster {
        config.replication = Some(follow_then_lead(cluster, &config, state).await?);
    }
    tracing::info!(data_dir = %args.data_dir.display(), "recovering");
    let open = Engine::open(config, Arc::new(SystemClock), Arc::new(SimulatedGateway::default()));
    open.await.map_err(|e| match e {
        EngineError::Locked(_) => ServerError::Config(e.to_string()),
        other => ServerError::Runtime(format!("recovery failed: {other}")),
    })
}

/// Cluster mode: serves as a standby until this node holds the lease and its log holds the
/// whole cluster log, then starts renewing the lease and returns the replicated commit the
/// engine acknowledges through.
async fn follow_then_lead(
    cluster: &ClusterConfig,
    config: &EngineConfig,
    state: &AppState,
) -> Result<Arc<dyn crate::engine::ReplicatedCommit>, ServerError> {
    let status = ClusterStatus::new(&cluster.node_id);
    state.set_cluster(status.clone());
    tracing::info!(
        url = cluster.url,
        cluster = cluster.name,
        node = cluster.node_id,
        "cluster mode"
    );
    let takeover = become_primary(cluster, config, &status)
        .await
        .map_err(|e| ServerError::Runtime(format!("cluster: {e}")))?;
    status.update(|s| {
        s.primary_id = Some(cluster.node_id.clone());
        s.primary_url = Some(cluster.advertise_url.clone());
    });
    Ok(Replicator::start(takeover.start, status, takeover.fence))
}

fn state_is_open(state: &AppState) -> bool {
    !state.protected()
}

/// Waits for SIGTERM or SIGINT, then starts the graceful shutdown.
async fn wait_for_signal(state: AppState) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
    state.begin_shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies_parse() {
        assert_eq!(parse_sync("always"), Ok(wal::SyncPolicy::Always));
        assert_eq!(parse_sync("none"), Ok(wal::SyncPolicy::None));
        assert_eq!(
            parse_sync("interval:5"),
            Ok(wal::SyncPolicy::Interval { interval_ms: 5 })
        );
        assert!(parse_sync("interval:0").is_err());
        assert!(parse_sync("sometimes").is_err());
    }

    #[test]
    fn no_arguments_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["oms"]).unwrap();
        assert!(cli.command.is_none());
        let args = cli.serve_args();
        assert_eq!(args.sync, wal::SyncPolicy::Always);
        let engine = EngineConfig::default();
        assert_eq!(args.idempotency_keys_max, engine.idempotency.keys_max as u64);
        assert_eq!(args.stream_replays_max, engine.stream_replays_max as u64);
        let cli = Cli::try_parse_from(["oms", "--stream-replays-max", "2", "--idempotency-keys-max", "9"]).unwrap();
        let args = cli.serve_args();
        assert_eq!((args.stream_replays_max, args.idempotency_keys_max), (2, 9));
        assert!(Cli::try_parse_from(["oms", "--idempotency-keys-max", "0"]).is_err());
        assert!(Cli::try_parse_from(["oms", "--stream-replays-max", "0"]).is_err());
        let cli = Cli::try_parse_from(["oms", "serve", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(cli.serve_args().listen, "127.0.0.1:0");
    }

    #[test]
    fn serve_help_lists_every_environment_variable() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let serve = cli
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        let top = Cli::command().render_long_help().to_string();
        let flags: Vec<String> = Cli::command()
            .find_subcommand("serve")
            .expect("serve")
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        assert!(flags.len() >= 13, "{flags:?}");
        for var in flags.iter().map(String::as_str).chain(["OMS_API_KEYS", "RUST_LOG"]) {
            assert!(serve.contains(var), "serve --help lacks {var}");
            assert!(top.contains(var), "--help lacks {var}");
        }
    }

    #[test]
    fn listen_takes_an_ip_or_a_host_name() {
        assert_eq!(listen_addr("127.0.0.1:80").unwrap(), "127.0.0.1:80".parse().unwrap());
        let local = listen_addr("localhost:8080").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 8080, "{local}");
        assert!(listen_addr("localhost").is_err(), "a port is needed");
        assert!(listen_addr("no such host.invalid:80").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
