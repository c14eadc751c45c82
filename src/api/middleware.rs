//! Cross-cutting request handling, outermost first: request id, access log and metrics
//! ([`observe`]); API keys ([`authenticate`]); the readiness gate ([`gate`]).

use super::doc::is_probe;
use super::error::ApiError;
use super::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use subtle::ConstantTimeEq;
use tracing::Instrument;

/// Header carrying the request id, echoed when the client sends a usable one.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client-supplied request id kept, in characters; longer ones are replaced.
pub const REQUEST_ID_LEN_MAX: usize = 128;

/// The method as a static string (metrics labels); anything non-standard is `OTHER`.
fn static_method(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn request_id(req: &Request) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let given = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= REQUEST_ID_LEN_MAX
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        });
    match given {
        Some(s) => s.to_string(),
        None => {
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("req-{started:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
        }
    }
}

/// Gives the request an id (echoed in `x-request-id`), runs it inside a span carrying that id,
/// logs its outcome and records its metrics by route template.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = static_method(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| state.template(m.as_str()))
        .unwrap_or("unmatched");
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status();
    state
        .metrics()
        .observe(method, route, status.as_u16(), elapsed.as_secs_f64());
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request finished");
        } else {
            // Debug, not info: one log line per request costs a write per request under load;
            // `/metrics` has the counts and latencies. `RUST_LOG=oms=debug` brings them back.
            tracing::debug!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// With API keys configured, every request but the probes needs `Authorization: Bearer KEY`.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let digests = state.key_digests();
    if digests.is_empty() || is_probe(req.uri().path()) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key)
        .map(|k| <[u8; 32]>::from(Sha256::digest(k.trim().as_bytes())));
    let Some(presented) = presented else {
        return ApiError::Unauthorized.into_response();
    };
    // Compare against every key without stopping early.
    let mut ok = subtle::Choice::from(0);
    for d in digests {
        ok |= d.ct_eq(&presented);
    }
    if bool::from(ok) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// Until the engine has recovered, every route but the probes answers 503 `unavailable`.
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.engine().is_err() && !is_probe(req.uri().path()) {
        return ApiError::Recovering.into_response();
    }
    next.run(req).await
}
