//! Idempotent mutations, the HTTP side: the request's fingerprint and the rendering of stored
//! and live responses. Everything else (the table, the per-key guard, retention and bounds)
//! is the engine's idempotency module.
//!
//! With a key, the engine claims it: requests that share it are serialized, a stored response
//! is replayed if the request is the same (same SHA-256 fingerprint of method, path and body)
//! and refused with `idempotency_conflict` if it is not. Otherwise the engine runs the mutation
//! and logs the rendered response in the same record as the change, so the two are durable
//! together and a replay after a restart returns the same bytes.
//!
//! Architecture invariant: the live response *is* the stored one (the bytes rendered once,
//! before the append), so they are byte-identical. Business rejections (4xx) are not stored:
//! nothing changed, so a retry re-evaluates. A payment decline is stored, because it did change
//! something (the order was cancelled).

use super::error::{ApiError, PROBLEM_JSON};
use super::extract::{Mutation, idempotency_key};
use crate::engine::{Claim, Engine, EngineError, IdemSpec};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;

/// Header set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// SHA-256 of method, path and body, each length-prefixed so no two requests share a preimage.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [method.as_str().as_bytes(), path.as_bytes(), body] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// A rendered response: status and JSON body (problem JSON for a 4xx such as a decline).
pub fn respond(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    let ct = if status.is_client_error() || status.is_server_error() {
        PROBLEM_JSON
    } else {
        "application/json"
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

/// A rendered response: status and body bytes.
type Rendered = (StatusCode, Vec<u8>);

/// Runs `call` as an idempotent mutation and answers with `render` of its value.
pub async fn run<T, R, F, Fut>(engine: &Engine, m: Mutation<'_>, render: R, call: F) -> Result<Response, ApiError>
where
    T: Send + 'static,
    R: Fn(&T) -> (StatusCode, Vec<u8>) + Clone + Send + 'static,
    F: FnOnce(Option<IdemSpec<T>>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, EngineError>> + Send + 'static,
{
    let Some(key) = idempotency_key(m.headers)? else {
        let value = call(None).await?;
        let (status, body) = render(&value);
        return Ok(respond(status, body));
    };
    let fingerprint = fingerprint(m.method, m.path, m.body);
    // The guarded section runs in its own task: a client that disconnects must not release
    // the key while its request is still being carried out, or a retry would run it twice.
    let engine = engine.clone();
    tokio::spawn(async move { guarded(engine, key, fingerprint, render, call).await })
        .await
        .map_err(|e| ApiError::Internal(format!("idempotent request task failed: {e}")))?
}

/// Claims the key: replay, refuse a conflict, or carry the request out holding it.
async fn guarded<T, R, F, Fut>(
    engine: Engine,
    key: String,
    fingerprint: [u8; 32],
    render: R,
    call: F,
) -> Result<Response, ApiError>
where
    T: Send + 'static,
    R: Fn(&T) -> (StatusCode, Vec<u8>) + Clone + Send + 'static,
    F: FnOnce(Option<IdemSpec<T>>) -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let hold = match engine.claim_idempotency_key(key, fingerprint).await {
        Claim::Run(hold) => hold,
        Claim::Conflict => return Err(ApiError::IdempotencyConflict),
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status)
                .map_err(|_| ApiError::Internal(format!("stored response has status {status}")))?;
            let mut resp = respond(status, body);
            resp.headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            return Ok(resp);
        }
    };
    // The engine renders the response once, before the append, to store it with the change;
    // the same bytes are the live answer, so live and replayed bodies are identical by
    // construction and the order is not rendered twice.
    let rendered: Arc<Mutex<Option<Rendered>>> = Arc::default();
    let slot = rendered.clone();
    let live = render.clone();
    let spec: IdemSpec<T> = hold.spec(Box::new(move |v: &T| {
        let (status, body) = render(v);
        *slot.lock() = Some((status, body.clone()));
        (status.as_u16(), body)
    }));
    let value = call(Some(spec)).await?;
    // A success that recorded nothing (no change was logged) is rendered now.
    let stored = rendered.lock().take();
    let (status, body) = stored.unwrap_or_else(|| live(&value));
    // The key is released only now that the request is carried out (also on the early
    // returns above, which drop it the same way).
    drop(hold);
    Ok(respond(status, body))
}
