//! Reading requests: the body (bounded, JSON only), the query string and the headers the API
//! knows. Every failure becomes an [`ApiError`] problem, never axum's plain-text rejections.
//!
//! Bodies are read as bytes first and parsed second because the idempotency fingerprint is
//! taken over the exact bytes the client sent.

use super::error::ApiError;
use super::limits::{BODY_BYTES_MAX, IDEMPOTENCY_KEY_LEN_MAX};
use super::state::AppState;
use crate::domain::FieldError;
use crate::engine::Engine;
use axum::body::Bytes;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri, header};
use serde::de::DeserializeOwned;

/// A request body: at most [`BODY_BYTES_MAX`] bytes and, unless empty, declared as JSON.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let too_large = ApiError::PayloadTooLarge {
            limit_bytes: BODY_BYTES_MAX,
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_BYTES_MAX as u64) {
            return Err(too_large);
        }
        let json = is_json(req.headers());
        let bytes = match axum::body::to_bytes(req.into_body(), BODY_BYTES_MAX).await {
            Ok(b) => b,
            Err(e) if is_length_limit(&e) => return Err(too_large),
            Err(_) => return Err(ApiError::BadRequest("the request body could not be read".into())),
        };
        if !bytes.is_empty() && !json {
            return Err(ApiError::BadRequest(
                "a request body must be JSON, sent with `Content-Type: application/json`".into(),
            ));
        }
        Ok(Body(bytes))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Parses a JSON body into `T`, naming the failing field on type errors, missing fields and
/// unknown fields. An empty body is read as `{}`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    // The fast path parses once; only a body that fails is parsed again with path tracking,
    // to name the failing field.
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            return Err(json_error(&path, e.into_inner()));
        }
    };
    de.end()
        .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {}", strip_position(&e))))?;
    Ok(value)
}

fn json_error(path: &str, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = strip_position(&e);
    let range = message.contains("out of range");
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io if !range => {
            ApiError::MalformedJson(format!("the body is not valid JSON: {message}"))
        }
        _ => {
            let base = match path {
                "." | "" | "?" => "",
                p => p.trim_end_matches(".?"),
            };
            let named = between_backticks(&message, "unknown field `")
                .or_else(|| between_backticks(&message, "missing field `"));
            // The path of an unknown field already ends with its name; a missing one's does not.
            let field = match (base, named) {
                ("", Some(n)) => n.to_string(),
                (b, Some(n)) if b == n || b.ends_with(&format!(".{n}")) => b.to_string(),
                (b, Some(n)) => format!("{b}.{n}"),
                ("", None) => "body".to_string(),
                (b, None) => b.to_string(),
            };
            let message = if message.starts_with("unknown field") {
                "is not a known field".to_string()
            } else if message.starts_with("missing field") {
                "is required".to_string()
            } else {
                plain_message(&message)
            };
            ApiError::Validation(vec![FieldError::new(field, message)])
        }
    }
}

/// serde's message in the client's terms: what JSON value was expected, never a Rust type
/// (`u64`, `map`, `sequence`).
fn plain_message(message: &str) -> String {
    if message.contains("out of range") {
        return "is out of range".into();
    }
    let expected = message.rsplit_once(", expected ").map(|(_, e)| e.trim());
    let wanted = match expected {
        Some("u8" | "u16" | "u32" | "u64" | "usize") => "must be a non-negative integer",
        Some("i8" | "i16" | "i32" | "i64" | "isize") => "must be an integer",
        Some("f32" | "f64") => "must be a number",
        Some("a string") => "must be a string",
        Some("a boolean") => "must be true or false",
        Some(e) if e.starts_with("a sequence") || e.starts_with("a tuple") => "must be an array",
        Some(e) if e.starts_with("struct ") || e.starts_with("a map") || e.starts_with("unit struct") => {
            "must be an object"
        }
        // A message a deserializer of ours wrote (money, keys) is already in the client's terms.
        _ if !message.starts_with("invalid ") => return message.to_string(),
        _ => "has a value of the wrong type",
    };
    wanted.into()
}

fn between_backticks<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// serde_json's message without its " at line L column C" suffix.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The query string as name-value pairs; names not in `known` are a validation failure.
pub fn query_pairs(uri: &Uri, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::BadRequest("the query string could not be decoded".into()))?
        .0;
    let unknown: Vec<FieldError> = pairs
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, _)| FieldError::new(k.clone(), "is not a known query parameter"))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::Validation(unknown));
    }
    Ok(pairs)
}

/// The `Idempotency-Key` header, if present: 1 to 255 printable ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut all = headers.get_all("idempotency-key").iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        // Which one would count is anybody's guess: refuse rather than pick.
        return Err(ApiError::field("Idempotency-Key", "must be sent at most once"));
    }
    let bad = || ApiError::field("Idempotency-Key", "must be 1 to 255 printable ASCII characters");
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > IDEMPOTENCY_KEY_LEN_MAX || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad());
    }
    Ok(Some(s.to_string()))
}

/// The request as the idempotency fingerprint sees it.
pub struct Mutation<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a Method,
    pub path: &'a str,
    pub body: &'a [u8],
}

/// The path parameters, by the names the route gives them (`{id}`, `{sku}`, ...).
#[derive(Default)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The parameter `name` as sent (percent-decoded); empty if the route has none of that
    /// name.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// What a mutation handler needs: the engine (503 while recovering), the path parameters by
/// name, the headers, the method, the path and the raw body.
pub struct Call {
    pub engine: Engine,
    pub params: PathParams,
    pub headers: HeaderMap,
    pub method: Method,
    pub path: String,
    pub body: Bytes,
}

impl Call {
    /// The request as the idempotency fingerprint sees it.
    pub fn mutation(&self) -> Mutation<'_> {
        Mutation {
            headers: &self.headers,
            method: &self.method,
            path: &self.path,
            body: &self.body,
        }
    }

    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body)
    }

    /// Path parameter `name` (`{name}` in the route).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }
}

impl FromRequest<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let read = Read::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let method = parts.method.clone();
        let Body(body) = Body::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Call {
            engine: read.engine,
            params: read.params,
            headers,
            method,
            path: read.uri.path().to_string(),
            body,
        })
    }
}

/// What a read handler needs: the engine (503 while recovering), the path parameters by name,
/// the URI (for the query string) and the headers.
pub struct Read {
    pub engine: Engine,
    pub params: PathParams,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl Read {
    /// Path parameter `name` (`{name}` in the route).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }
}

impl FromRequestParts<AppState> for Read {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let engine = state.engine()?.clone();
        let params = match RawPathParams::from_request_parts(parts, state).await {
            Ok(p) => PathParams(p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()),
            Err(RawPathParamsRejection::MissingPathParams(_)) => PathParams::default(),
            Err(_) => return Err(ApiError::BadRequest("a path segment is not valid UTF-8".into())),
        };
        Ok(Read {
            engine,
            params,
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::input::{AdjustBody, PlaceOrderBody, RefundBody};

    fn errors_of<T: DeserializeOwned>(body: &str) -> Vec<(String, String)> {
        match parse_json::<T>(body.as_bytes()) {
            Err(ApiError::Validation(errs)) => errs.into_iter().map(|e| (e.field, e.message)).collect(),
            Err(other) => panic!("not a validation error: {other:?}"),
            Ok(_) => panic!("accepted: {body}"),
        }
    }

    /// No Rust type name reaches the client.
    #[test]
    fn type_errors_name_json_types_not_rust_types() {
        for (body, message) in [
            (r#"{"sku":"a","warehouse_id":"w","delta":"3"}"#, "must be an integer"),
            (r#"{"sku":"a","warehouse_id":"w","delta":1.5}"#, "must be an integer"),
            (r#"{"sku":1,"warehouse_id":"w","delta":1}"#, "must be a string"),
            (
                r#"{"sku":"a","warehouse_id":"w","delta":1,"reason":[1]}"#,
                "must be a string",
            ),
        ] {
            let errs = errors_of::<AdjustBody>(body);
            assert_eq!(errs.len(), 1, "{body}: {errs:?}");
            assert_eq!(errs[0].1, message, "{body}");
        }
        let errs = errors_of::<PlaceOrderBody>(r#"{"user_id":"u","currency":"USD","items":{},"shipping_address":{}}"#);
        assert_eq!(errs[0], ("items".to_string(), "must be an array".to_string()));
        let errs = errors_of::<PlaceOrderBody>(r#"{"user_id":"u","currency":"USD","items":[],"shipping_address":[]}"#);
        assert_eq!(
            errs[0],
            ("shipping_address".to_string(), "must be an object".to_string())
        );
        let errs = errors_of::<PlaceOrderBody>(
            r#"{"user_id":"u","currency":"USD","items":[{"sku":"a","quantity":-1,"unit_price":"1"}],"shipping_address":{}}"#,
        );
        assert_eq!(errs[0].1, "must be a non-negative integer");
        for word in ["u64", "i64", "map", "sequence", "struct", "usize"] {
            for (_, m) in errors_of::<AdjustBody>(r#"{"sku":{},"warehouse_id":"w","delta":{}}"#) {
                assert!(!m.contains(word), "{m}");
            }
        }
    }

    /// `true` as a price says what a price must be.
    #[test]
    fn a_boolean_price_says_it_must_be_a_decimal() {
        let errs = errors_of::<RefundBody>(r#"{"amount":true}"#);
        assert_eq!(errs[0].0, "amount");
        assert!(errs[0].1.contains("decimal"), "{:?}", errs);
    }
}
