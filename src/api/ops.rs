//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document.

use super::AppState;
use super::error::ApiError;
use super::routes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `GET /healthz`: 200 while the process is up, also during recovery.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 once recovered and while the log is writable, else 503.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine() {
        Err(e) => e.into_response(),
        Ok(_) if !state.ready() => ApiError::Unavailable("the log is not writable".into()).into_response(),
        Ok(_) => axum::Json(json!({"status": "ready"})).into_response(),
    }
}

/// `GET /metrics`: Prometheus text format 0.0.4.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let stats = state.engine().ok().map(|e| e.stats());
    let text = state.metrics().render(stats.as_ref(), state.ready());
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Response {
    axum::Json(routes::openapi()).into_response()
}

/// Answer for paths no route matches.
pub async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Answer for a known path with a method it does not take, with the `Allow` header listing
/// the methods it does take (from the route table).
pub async fn no_method(uri: axum::http::Uri) -> Response {
    let allowed = routes::methods_for(uri.path());
    let mut resp = ApiError::MethodNotAllowed.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&allowed.join(", ")) {
        resp.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    resp
}
