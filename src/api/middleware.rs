//! Cross-cutting request handling, outermost first: request id, access log and metrics
//! ([`observe`]); API keys ([`authenticate`]); the readiness gate ([`gate`]).

use super::doc::{is_probe, is_stream_path};
use super::error::ApiError;
use super::state::AppState;
use super::token::bearer_digest;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// With API keys configured, every request but the probes needs `Authorization: Bearer KEY`;
/// an event stream may instead carry a stream token as `?access_token=` (`token.rs`).
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let digests = state.key_digests();
    if digests.is_empty() || is_probe(req.uri().path()) {
        return next.run(req).await;
    }
    let presented = bearer_digest(req.headers());
    let Some(presented) = presented else {
        if let Some(token) = stream_access_token(&req) {
            let now = state.engine().map_or_else(|_| system_now(), |e| e.now());
            return match state.stream_tokens().verify(&token, now, digests) {
                Ok(()) => next.run(req).await,
                Err(why) => {
                    tracing::debug!(%why, "stream token refused");
                    ApiError::Unauthorized.into_response()
                }
            };
        }
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

/// The `access_token` query parameter of a `GET` of an event stream (`/v1/events`,
/// `/v1/orders/{id}/events`), the only requests a stream token opens.
fn stream_access_token(req: &Request) -> Option<String> {
    if req.method() != axum::http::Method::GET || !is_stream_path(req.uri().path()) {
        return None;
    }
    let query = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
        .ok()?
        .0;
    let mut tokens = query.into_iter().filter(|(k, _)| k == "access_token");
    match (tokens.next(), tokens.next()) {
        (Some((_, t)), None) => Some(t),
        _ => None, // none, or ambiguous
    }
}

fn system_now() -> crate::domain::Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    crate::domain::Millis(ms)
}

/// Largest `201` body read to find the created resource's id, in bytes (an order with 500
/// lines is well under it); a larger one goes out without `Location`.
pub const LOCATED_BODY_BYTES_MAX: usize = 4 << 20;

/// Gives every `201 Created` a `Location`: for `PUT`, the request's own path; for `POST`, the
/// path followed by the created resource's `id` from the body (`/v1/orders/ORD-…`,
/// `/v1/orders/ORD-…/returns/RET-…`). Done here, from the response, so a response replayed
/// for an `Idempotency-Key` (stored as status and body) gets the same header.
pub async fn locate(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let resp = next.run(req).await;
    if resp.status() != axum::http::StatusCode::CREATED || resp.headers().contains_key(header::LOCATION) {
        return resp;
    }
    let location = if method == axum::http::Method::PUT {
        Some(path)
    } else {
        let (parts, body) = resp.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, LOCATED_BODY_BYTES_MAX).await else {
            // Only an oversized or broken body: the status stays, the body is lost.
            return ApiError::Internal("a 201 body could not be read".into()).into_response();
        };
        let id = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string));
        let mut resp = Response::from_parts(parts, axum::body::Body::from(bytes));
        if let Some(v) = id.and_then(|id| HeaderValue::from_str(&format!("{path}/{id}")).ok()) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    };
    let mut resp = resp;
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Until the engine has recovered, every route but the probes answers 503 `unavailable`.
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.engine().is_err() && !is_probe(req.uri().path()) {
        return ApiError::Recovering.into_response();
    }
    next.run(req).await
}
