//! [`AppState`]: what every handler and middleware shares, and [`ApiConfig`], what the HTTP
//! layer is configured with.
//!
//! It lives in its own file so that the handlers, the middleware and the route table all depend
//! on it and none of them on each other (no import cycles inside `api`).

use super::error::ApiError;
use super::metrics::Metrics;
use super::token::{STREAM_TOKEN_TTL_MS_DEFAULT, StreamTokens};
use crate::cluster::{ClusterStatus, Role};
use crate::engine::Engine;
use crate::relay::RelayStatus;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use tokio::sync::{OnceCell, watch};

/// Default cap on requests being handled at once; more are shed with 503.
pub const IN_FLIGHT_REQUESTS_MAX_DEFAULT: usize = 1024;
/// Default time a request may take before it is answered 503, in milliseconds.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// What the API layer is configured with.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Accepted bearer keys; empty means no authentication (the binary then insists on a
    /// loopback listen address).
    pub api_keys: Vec<String>,
    /// Requests handled at once (event streams count while they are being set up); a request
    /// beyond it is answered 503 `unavailable` at once instead of queueing.
    pub in_flight_requests_max: usize,
    /// Time a request (event streams excepted) may take before it is answered 503.
    pub request_timeout_ms: u64,
    /// The signing secret and lifetime of stream tokens; `None`: a random secret for this
    /// process with the default lifetime (the binary keeps one in the data directory).
    pub stream_tokens: Option<StreamTokens>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            api_keys: Vec::new(),
            in_flight_requests_max: IN_FLIGHT_REQUESTS_MAX_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            stream_tokens: None,
        }
    }
}

/// What the route table tells the rest of the layer, set once when the router is built.
pub(crate) struct RouteIndex {
    /// Every served route template with its methods (upper case), from the generated document.
    pub(crate) routes: Vec<(&'static str, Vec<&'static str>)>,
    /// The OpenAPI document as this server serves it (security as configured), as JSON bytes.
    pub(crate) document: Vec<u8>,
}

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    /// Empty while the engine recovers: the server listens (and answers `/healthz`) before
    /// recovery ends, and every route that needs the engine answers 503 until it is set.
    engine: OnceCell<Engine>,
    /// Cluster mode: this node's status; the engine is served only while it is the primary.
    cluster: OnceLock<ClusterStatus>,
    /// SHA-256 of each API key. Comparing digests in constant time hides both the key bytes
    /// and their length from a timing attacker.
    key_digests: Vec<[u8; 32]>,
    stream_tokens: StreamTokens,
    config: ApiConfig,
    metrics: Metrics,
    /// Set by the router when it is built (the route table is the router's).
    routes: OnceLock<RouteIndex>,
    /// The PostgreSQL read model's projector, when `--postgres-url` turned it on.
    read_model: OnceLock<Arc<crate::read_model::ReadModelStatus>>,
    /// The RabbitMQ relay, when the server runs one (its lag shows in `/readyz`).
    relay: OnceLock<RelayStatus>,
    /// Flipped once when the server begins a graceful shutdown, so long-lived event streams
    /// end and let the connection drain finish.
    shutdown: watch::Sender<bool>,
}

impl AppState {
    pub fn new(config: ApiConfig) -> AppState {
        let key_digests = config
            .api_keys
            .iter()
            .map(|k| Sha256::digest(k.as_bytes()).into())
            .collect();
        let stream_tokens = config.stream_tokens.clone().unwrap_or_else(|| {
            StreamTokens::random(STREAM_TOKEN_TTL_MS_DEFAULT).unwrap_or_else(|e| {
                // No random source: nobody can forge a token signed with an unknown secret,
                // and this one is unknown too (the digest of the time and the process).
                tracing::warn!(error = %e, "no random source for the stream token secret");
                let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
                StreamTokens::new(Sha256::digest(seed.as_bytes()).into(), STREAM_TOKEN_TTL_MS_DEFAULT)
            })
        });
        AppState {
            inner: Arc::new(Shared {
                engine: OnceCell::new(),
                cluster: OnceLock::new(),
                key_digests,
                stream_tokens,
                config,
                metrics: Metrics::default(),
                routes: OnceLock::new(),
                read_model: OnceLock::new(),
                relay: OnceLock::new(),
                shutdown: watch::Sender::new(false),
            }),
        }
    }

    /// A state with the engine already set (tests).
    pub fn with_engine(config: ApiConfig, engine: Engine) -> AppState {
        let s = AppState::new(config);
        s.set_engine(engine);
        s
    }

    /// Sets the engine once recovery has finished; false if it was already set.
    pub fn set_engine(&self, engine: Engine) -> bool {
        let set = self.inner.engine.set(engine.clone()).is_ok();
        if set {
            self.inner.metrics.follow(&engine);
        }
        set
    }

    /// The engine, or 503 `unavailable` while recovering, or 503 `not_leader` on a cluster
    /// node that is not the primary.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        if let Some(cluster) = self.inner.cluster.get()
            && cluster.role() != Role::Primary
        {
            let v = cluster.view();
            return Err(ApiError::NotLeader {
                primary_id: v.primary_id,
                primary_url: v.primary_url,
            });
        }
        self.inner.engine.get().ok_or(ApiError::Recovering)
    }

    /// Cluster mode: sets this node's status (once).
    pub fn set_cluster(&self, status: ClusterStatus) {
        let _ = self.inner.cluster.set(status);
    }

    /// Cluster mode: this node's status.
    pub fn cluster(&self) -> Option<&ClusterStatus> {
        self.inner.cluster.get()
    }

    /// True once recovered and while the log is writable.
    pub fn ready(&self) -> bool {
        self.inner.engine.get().is_some_and(Engine::writable)
    }

    /// Records the running RabbitMQ relay (once).
    pub fn set_relay(&self, status: RelayStatus) {
        let _ = self.inner.relay.set(status);
    }

    pub fn relay(&self) -> Option<&RelayStatus> {
        self.inner.relay.get()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// True when API keys are configured (protected mode).
    pub fn protected(&self) -> bool {
        !self.inner.key_digests.is_empty()
    }

    pub(crate) fn key_digests(&self) -> &[[u8; 32]] {
        &self.inner.key_digests
    }

    pub(crate) fn stream_tokens(&self) -> &StreamTokens {
        &self.inner.stream_tokens
    }

    /// Records the route table; the first router built for this state wins.
    pub(crate) fn set_routes(&self, index: RouteIndex) {
        let _ = self.inner.routes.set(index);
    }

    /// The served OpenAPI document (JSON bytes).
    pub(crate) fn document(&self) -> &[u8] {
        self.inner.routes.get().map(|r| r.document.as_slice()).unwrap_or(b"{}")
    }

    /// The route template as a static string (metrics labels), if `matched` is one.
    pub(crate) fn template(&self, matched: &str) -> Option<&'static str> {
        let routes = &self.inner.routes.get()?.routes;
        routes.iter().map(|(p, _)| *p).find(|p| *p == matched)
    }

    /// The methods served on the route that matches `path` (for the `Allow` header of a 405).
    pub(crate) fn methods_for(&self, path: &str) -> Vec<&'static str> {
        let Some(index) = self.inner.routes.get() else {
            return Vec::new();
        };
        // As the router matches: a literal segment beats a parameter, so among the templates
        // that fit, only those with the most literal segments answer for the path.
        let fitting: Vec<&(&'static str, Vec<&'static str>)> = index
            .routes
            .iter()
            .filter(|(template, _)| template_matches(template, path))
            .collect();
        let literals = |t: &str| t.split('/').filter(|s| !s.starts_with('{')).count();
        let most = fitting.iter().map(|(t, _)| literals(t)).max().unwrap_or(0);
        let methods: BTreeSet<&'static str> = fitting
            .iter()
            .filter(|(t, _)| literals(t) == most)
            .flat_map(|(_, m)| m.iter().copied())
            .collect();
        methods.into_iter().collect()
    }

    /// Ends event streams so a graceful shutdown can drain connections.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Shows the read model's projector in `/metrics` and `/readyz` (set once).
    pub fn set_read_model(&self, status: Arc<crate::read_model::ReadModelStatus>) {
        let _ = self.inner.read_model.set(status);
    }

    /// The read model's projector, if it runs.
    pub fn read_model(&self) -> Option<&crate::read_model::ReadModelStatus> {
        self.inner.read_model.get().map(|s| &**s)
    }
}

/// True if `path` fits `template` segment by segment (`{name}` matches any one segment).
fn template_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}
