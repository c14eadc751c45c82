//! [`ApiError`]: every way a request can fail, and the one place that turns a failure into an
//! `application/problem+json` response (RFC 9457).
//!
//! Three kinds of failure are kept apart here: business rejections and bad input are the
//! client's (4xx, logged at debug at most); unavailability is the server's but expected (503,
//! logged at warn with its cause); anything else is a bug or an operating error (500, logged at
//! error with its cause). Internal detail never reaches the client: the 5xx bodies are fixed
//! sentences.

use crate::domain::rejection::BelowReserved;
use crate::domain::sale::SaleRejection;
use crate::domain::{FieldError, OrderStatus, Rejection, ShortLine};
use crate::engine::EngineError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of the `type` URI of every problem; the machine `code` follows it.
pub const PROBLEM_TYPE_BASE: &str = "https://oms.dev/problems/";

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `malformed_json`: the body is not syntactically valid JSON.
    MalformedJson(String),
    /// 400 `bad_request`: the request is unusable for a reason that is not a field's value
    /// (wrong media type, undecodable query string or path).
    BadRequest(String),
    /// 422 `validation_failed`: named fields are wrong.
    Validation(Vec<FieldError>),
    /// 404 `not_found`.
    NotFound(String),
    /// 405 `method_not_allowed`.
    MethodNotAllowed,
    /// 409 `insufficient_stock`.
    InsufficientStock(Vec<ShortLine>),
    /// 409 `insufficient_stock` for an adjustment or count below what is reserved.
    BelowReserved(BelowReserved),
    /// 409 `invalid_transition`.
    InvalidTransition {
        from: OrderStatus,
        action: &'static str,
        detail: String,
    },
    /// 402 `payment_declined` without an order (the engine said so before anything was logged).
    PaymentDeclined(String),
    /// 422 `idempotency_conflict`: the key was used with another request.
    IdempotencyConflict,
    /// 413 `payload_too_large`.
    PayloadTooLarge { limit_bytes: usize },
    /// 401 `unauthorized`.
    Unauthorized,
    /// 503 `unavailable`; the string is the cause, logged and never sent.
    Unavailable(String),
    /// 503 `unavailable` while the engine recovers.
    Recovering,
    /// 500 `internal`; the string is the cause, logged and never sent.
    Internal(String),
    /// A flash sale's refusal: 409 `sale_not_started`, `sale_ended`, `limit_exceeded`;
    /// 429 `rate_limited` (with `Retry-After`).
    Sale(SaleRejection),
}

impl ApiError {
    /// One failing field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::IdempotencyConflict => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InsufficientStock(_) | ApiError::BelowReserved(_) | ApiError::InvalidTransition { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::PaymentDeclined(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Unavailable(_) | ApiError::Recovering => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Sale(SaleRejection::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Sale(_) => StatusCode::CONFLICT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "validation_failed",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InsufficientStock(_) | ApiError::BelowReserved(_) => "insufficient_stock",
            ApiError::InvalidTransition { .. } => "invalid_transition",
            ApiError::PaymentDeclined(_) => "payment_declined",
            ApiError::IdempotencyConflict => "idempotency_conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Unavailable(_) | ApiError::Recovering => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Sale(r) => sale_code(r),
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "Malformed JSON",
            ApiError::BadRequest(_) => "Bad request",
            ApiError::Validation(_) => "Validation failed",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::InsufficientStock(_) | ApiError::BelowReserved(_) => "Insufficient stock",
            ApiError::InvalidTransition { .. } => "Invalid transition",
            ApiError::PaymentDeclined(_) => "Payment declined",
            ApiError::IdempotencyConflict => "Idempotency conflict",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Unavailable(_) | ApiError::Recovering => "Service unavailable",
            ApiError::Internal(_) => "Internal server error",
            ApiError::Sale(SaleRejection::NotStarted { .. }) => "Sale not started",
            ApiError::Sale(SaleRejection::Ended { .. }) => "Sale ended",
            ApiError::Sale(SaleRejection::LimitExceeded { .. }) => "Limit exceeded",
            ApiError::Sale(SaleRejection::RateLimited { .. }) => "Too many requests",
        }
    }

    /// The problem document: `type`, `title`, `status`, `detail`, `code` and the extras of
    /// each code.
    pub fn body(&self) -> Map<String, Value> {
        let mut extras = Map::new();
        let detail = match self {
            ApiError::MalformedJson(d) | ApiError::BadRequest(d) | ApiError::NotFound(d) => d.clone(),
            ApiError::Validation(errors) => {
                extras.insert("errors".into(), json!(errors));
                match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    _ => format!("{} fields are invalid", errors.len()),
                }
            }
            ApiError::MethodNotAllowed => "this route does not accept that method".into(),
            ApiError::InsufficientStock(lines) => {
                let lines: Vec<Value> = lines
                    .iter()
                    .map(|l| json!({"sku": l.sku.as_str(), "requested": l.requested, "available": l.available}))
                    .collect();
                extras.insert("lines".into(), Value::Array(lines));
                "not enough stock to reserve every line; nothing was reserved".into()
            }
            ApiError::BelowReserved(b) => {
                // `lines` as every insufficient_stock problem has it, then the pair's figures.
                let line = json!({"sku": b.sku.as_str(), "requested": b.requested, "available": b.removable});
                extras.insert("lines".into(), json!([line]));
                extras.insert("warehouse_id".into(), json!(b.warehouse_id.as_str()));
                extras.insert("on_hand".into(), json!(b.on_hand));
                extras.insert("reserved".into(), json!(b.reserved));
                b.to_string()
            }
            ApiError::InvalidTransition { from, action, detail } => {
                extras.insert("from".into(), json!(from.as_str()));
                extras.insert("action".into(), json!(action));
                detail.clone()
            }
            ApiError::PaymentDeclined(reason) => format!("the payment was declined: {reason}"),
            ApiError::IdempotencyConflict => {
                "this Idempotency-Key was already used with a different request (method, path or body)".into()
            }
            ApiError::PayloadTooLarge { limit_bytes } => {
                extras.insert("limit_bytes".into(), json!(limit_bytes));
                format!("the request body exceeds {limit_bytes} bytes")
            }
            ApiError::Unauthorized => {
                "a valid `Authorization: Bearer <key>` header is required (an event stream also takes `?access_token=` from POST /v1/stream-tokens)".into()
            }
            ApiError::Unavailable(_) => "the service cannot take this request right now; retry shortly".into(),
            ApiError::Recovering => "recovering: the service is not ready yet; retry shortly".into(),
            ApiError::Internal(_) => "an internal error occurred; it has been logged".into(),
            ApiError::Sale(r) => sale_extras(r, &mut extras),
        };
        problem(self.status(), self.code(), self.title(), &detail, extras)
    }

    /// Logs the failure at the level its kind deserves.
    fn log(&self) {
        match self {
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            ApiError::Unavailable(cause) => tracing::warn!(cause = %cause, "request refused: unavailable"),
            ApiError::Recovering => tracing::debug!("request refused: recovering"),
            other => tracing::debug!(code = other.code(), "request rejected"),
        }
    }
}

fn sale_code(r: &SaleRejection) -> &'static str {
    match r {
        SaleRejection::NotStarted { .. } => "sale_not_started",
        SaleRejection::Ended { .. } => "sale_ended",
        SaleRejection::LimitExceeded { .. } => "limit_exceeded",
        SaleRejection::RateLimited { .. } => "rate_limited",
    }
}

/// The extras of a sale's refusal, and its detail.
fn sale_extras(r: &SaleRejection, extras: &mut Map<String, Value>) -> String {
    match r {
        SaleRejection::NotStarted { sale, starts_at } => {
            extras.insert("sale_id".into(), json!(sale.as_str()));
            extras.insert("starts_at".into(), json!(starts_at.rfc3339()));
        }
        SaleRejection::Ended { sale, ended_at } => {
            extras.insert("sale_id".into(), json!(sale.as_str()));
            extras.insert("ended_at".into(), json!(ended_at.rfc3339()));
        }
        SaleRejection::LimitExceeded {
            sale,
            scope,
            limit,
            held,
            requested,
        } => {
            extras.insert("sale_id".into(), json!(sale.as_str()));
            extras.insert("scope".into(), json!(scope.as_str()));
            extras.insert("limit".into(), json!(limit));
            extras.insert("held".into(), json!(held));
            extras.insert("requested".into(), json!(requested));
        }
        SaleRejection::RateLimited { sale, retry_after_ms } => {
            extras.insert("sale_id".into(), json!(sale.as_str()));
            extras.insert(
                "retry_after_seconds".into(),
                json!(retry_after_seconds(*retry_after_ms)),
            );
        }
    }
    r.to_string()
}

/// Whole seconds to wait, at least 1 (what `Retry-After` can say).
fn retry_after_seconds(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// Builds a problem document.
pub fn problem(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    extras: Map<String, Value>,
) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("type".into(), json!(format!("{PROBLEM_TYPE_BASE}{code}")));
    body.insert("title".into(), json!(title));
    body.insert("status".into(), json!(status.as_u16()));
    body.insert("detail".into(), json!(detail));
    body.insert("code".into(), json!(code));
    body.extend(extras);
    body
}

/// A `problem+json` response from a status and a serialized body.
pub fn problem_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750: a 401 names the scheme it wants.
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"oms\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = problem_response(self.status(), body);
        if let ApiError::Sale(SaleRejection::RateLimited { retry_after_ms, .. }) = &self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(*retry_after_ms)),
            );
        }
        resp
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Validation(errors) => ApiError::Validation(errors),
            Rejection::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            Rejection::InsufficientStock(lines) => ApiError::InsufficientStock(lines),
            Rejection::BelowReserved(b) => ApiError::BelowReserved(b),
            Rejection::InvalidTransition { from, action, detail } => {
                ApiError::InvalidTransition { from, action, detail }
            }
            Rejection::PaymentDeclined { reason } => ApiError::PaymentDeclined(reason),
            Rejection::Sale(r) => ApiError::Sale(r),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Rejected(r) => r.into(),
            EngineError::Busy(why) => ApiError::Unavailable(format!("busy: {why}")),
            EngineError::Unavailable(why) => ApiError::Unavailable(why.to_string()),
            EngineError::OutcomeUnknown(why) => ApiError::Unavailable(why.to_string()),
            e @ (EngineError::Locked(_) | EngineError::Open(_)) => ApiError::Internal(e.to_string()),
        }
    }
}
