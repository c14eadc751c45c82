//! `POST /v1/stream-tokens`: mints a token for the event streams (`token.rs` says what a
//! token is and why).

use super::error::ApiError;
use super::extract::{Call, idempotency_key};
use super::input::EmptyBody;
use super::state::AppState;
use super::token::bearer_digest;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to `POST /v1/stream-tokens`.
#[derive(Serialize, ToSchema)]
#[schema(as = StreamToken)]
pub struct StreamTokenJson {
    /// Pass as `?access_token=` to `GET /v1/events` or `GET /v1/orders/{id}/events`.
    pub token: String,
    /// When the token stops being accepted (RFC 3339). A stream opened before keeps running.
    pub expires_at: String,
    /// Seconds from now until `expires_at`.
    pub expires_in_seconds: u64,
}

/// `POST /v1/stream-tokens`: mints a token for the event streams.
#[utoipa::path(post, path = "/v1/stream-tokens", operation_id = "createStreamToken", tag = "events",
    summary = "Mint a short-lived token for the event streams (for EventSource)",
    responses((status = 200, description = "A token the stream endpoints accept as `?access_token=`", body = StreamTokenJson),
        (status = 400, response = inline(super::doc::BadRequest)),
        (status = 422, response = inline(super::doc::Invalid))))]
pub async fn mint(State(state): State<AppState>, call: Call) -> Result<Response, ApiError> {
    let _: EmptyBody = call.json()?;
    // Checked like every POST's, though minting needs no replay (a retry mints another token).
    idempotency_key(&call.headers)?;
    let now = call.engine.now();
    let tokens = state.stream_tokens();
    // The middleware let the request in, so a presented key is a configured one.
    let key = bearer_digest(&call.headers);
    let (token, expires) = tokens.mint(key.as_ref(), now);
    let body = StreamTokenJson {
        token,
        expires_at: expires.rfc3339(),
        expires_in_seconds: tokens.ttl_ms() / 1000,
    };
    Ok(axum::Json(body).into_response())
}
