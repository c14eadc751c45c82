//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document; and the answers
//! for paths and methods no route takes.

use super::doc::{ProbeJson, ReadModelJson, ReadyJson, RelayJson};
use super::error::ApiError;
use super::state::AppState;
use crate::engine::Engine;
use crate::relay::RelayStatus;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `GET /healthz`: 200 while the process is up, also during recovery.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations",
    summary = "Liveness: 200 while the process runs",
    responses((status = 200, description = "The process is up", body = ProbeJson)))]
pub async fn healthz() -> Response {
    axum::Json(ProbeJson { status: "ok" }).into_response()
}

/// `GET /readyz`: 200 once recovered and while the log is writable, else 503.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations",
    summary = "Readiness: 200 once recovered and while the log is writable",
    responses((status = 200, description = "Recovered and writable; the read model's and the relays' state as detail", body = ReadyJson)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine() {
        Err(e) => e.into_response(),
        Ok(_) if !state.ready() => ApiError::Unavailable("the log is not writable".into()).into_response(),
        Ok(engine) => {
            let read_model = state.read_model().map(|r| {
                let f = r.figures(engine.published_lsn());
                ReadModelJson {
                    connected: f.connected,
                    position: f.position,
                    lag_records: f.lag_records,
                    records_total: f.records_total,
                    errors_total: f.errors_total,
                    last_error: f.last_error,
                }
            });
            let amqp_relay = state.relay().map(|r| relay_json(engine, r));
            axum::Json(ReadyJson {
                status: "ready",
                read_model,
                amqp_relay,
            })
            .into_response()
        }
    }
}

/// A relay's figures; its lag is its log subscriber's.
pub(crate) fn relay_json(engine: &Engine, relay: &RelayStatus) -> RelayJson {
    let name = relay.subscriber();
    let lag_records = engine
        .subscribers()
        .into_iter()
        .find(|s| s.name == name)
        .map_or(0, |s| s.lag_records);
    RelayJson {
        connected: relay.connected(),
        lag_records,
        published_total: relay.published_total(),
        reconnects_total: relay.reconnects_total(),
        last_error: relay.last_error(),
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations",
    summary = "Prometheus metrics (text exposition format)",
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let cluster = state.cluster().map(|c| c.view());
    let mut text = state
        .metrics()
        .render(state.engine().ok(), state.ready(), state.relay(), cluster.as_ref());
    if let (Some(read_model), Ok(engine)) = (state.read_model(), state.engine()) {
        text.push_str(&super::metrics::render_read_model(
            &read_model.figures(engine.published_lsn()),
        ));
    }
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /v1/openapi.json`: the document as this server applies it (security only with keys).
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "openapi", tag = "operations",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    let mut resp = state.document().to_vec().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `GET /`: what this service is, and where to go next.
#[utoipa::path(get, path = "/", operation_id = "root", tag = "operations",
    summary = "The service's name, version and links",
    responses((status = 200, description = "Name, version and links", body = RootJson)))]
pub async fn root() -> Response {
    axum::Json(RootJson {
        service: "oms",
        version: env!("CARGO_PKG_VERSION"),
        links: RootLinks {
            openapi: "/v1/openapi.json",
            docs: "/v1/docs",
            admin: "/admin",
            health: "/healthz",
            ready: "/readyz",
            metrics: "/metrics",
            events: "/v1/events",
        },
    })
    .into_response()
}

/// `GET /v1/docs`: the API reference this server was built with (docs/API.md), as Markdown.
#[utoipa::path(get, path = "/v1/docs", operation_id = "docs", tag = "operations",
    summary = "The API reference (Markdown)",
    responses((status = 200, description = "docs/API.md", body = String, content_type = "text/markdown")))]
pub async fn docs() -> Response {
    let mut resp = include_str!("../../docs/API.md").into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    resp
}

/// The answer of `GET /`.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Root)]
pub struct RootJson {
    /// Always `oms`.
    pub service: &'static str,
    /// The server's version (semver).
    pub version: &'static str,
    pub links: RootLinks,
}

/// Where to go from `GET /`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RootLinks {
    /// The OpenAPI 3.1 document of this server.
    pub openapi: &'static str,
    /// The API reference (docs/API.md of the build, as Markdown).
    pub docs: &'static str,
    /// The admin dashboard.
    pub admin: &'static str,
    pub health: &'static str,
    pub ready: &'static str,
    pub metrics: &'static str,
    /// All changes as server-sent events.
    pub events: &'static str,
}

/// Answer for paths no route matches.
pub async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Answer for a known path with a method it does not take, with the `Allow` header listing
/// the methods it does take (from the route table).
pub async fn no_method(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let allowed = state.methods_for(uri.path());
    let mut resp = ApiError::MethodNotAllowed.into_response();
    if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}
