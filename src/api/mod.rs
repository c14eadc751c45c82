//! The HTTP front door: axum routes, JSON wire types, problem responses, idempotency,
//! server-sent events, metrics and the OpenAPI document.
//!
//! [`app`] builds the whole router from [`AppState`], so tests drive it with `oneshot` and no
//! socket, and the binary serves the same router.
//!
//! # Layout
//! - [`routes`]: the route table. It builds the router *and* the OpenAPI document, so the two
//!   cannot disagree.
//! - [`error`]: [`ApiError`], the one mapping from failures to `problem+json`.
//! - [`extract`]: bounded body reading, query and header parsing, the per-handler extractors.
//! - [`input`], [`output`]: the wire types, in and out.
//! - [`idempotency`]: the `Idempotency-Key` flow shared by every mutation.
//! - [`warehouses`], [`inventory`], [`orders`]: handlers by resource.
//! - [`events`]: the SSE streams and the mapping from log records to API events.
//! - [`ops`]: health, readiness, metrics, OpenAPI; [`metrics`]: the registry.
//! - [`middleware`]: request ids, access logs, metrics, API keys and the readiness gate.
//!
//! Architecture invariant: this is the only module that knows HTTP and JSON. It holds no
//! business state: everything durable is the engine's, reached through [`Engine`].

pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod input;
pub mod inventory;
pub mod metrics;
pub mod middleware;
pub mod ops;
pub mod orders;
pub mod output;
pub mod routes;
pub mod warehouses;

pub use error::ApiError;

use crate::engine::Engine;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::{OnceCell, watch};

/// What the API layer is configured with.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// Accepted bearer keys; empty means no authentication (the binary then insists on a
    /// loopback listen address).
    pub api_keys: Vec<String>,
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
    /// SHA-256 of each API key. Comparing digests in constant time hides both the key bytes
    /// and their length from a timing attacker.
    key_digests: Vec<[u8; 32]>,
    metrics: metrics::Metrics,
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
        AppState {
            inner: Arc::new(Shared {
                engine: OnceCell::new(),
                key_digests,
                metrics: metrics::Metrics::default(),
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
        self.inner.engine.set(engine).is_ok()
    }

    /// The engine, or 503 `unavailable` while recovering.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        self.inner.engine.get().ok_or(ApiError::Recovering)
    }

    /// True once recovered and while the log is writable.
    pub fn ready(&self) -> bool {
        self.inner.engine.get().is_some_and(Engine::writable)
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub(crate) fn key_digests(&self) -> &[[u8; 32]] {
        &self.inner.key_digests
    }

    /// Ends event streams so a graceful shutdown can drain connections.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}
