//! The HTTP client side of the oms contract (shared/API.md): one `reqwest`
//! client with a connection pool, the bearer key, and a `call` that measures
//! and classifies one request into the [`Recorder`].
//!
//! Bodies are parsed defensively into `serde_json::Value`: a load generator
//! must report a surprising answer, not crash on it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Client, Method, StatusCode, header};
use serde_json::Value;

use crate::recorder::{Class, Recorder, Sample};
use crate::schedule::latency_since;

/// Idle connections kept per host beyond the workers' own, for bursts.
const POOL_IDLE_SPARE: usize = 16;

/// One answer: status, parsed body (`Null` when it is not JSON) and raw text.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) json: Value,
    pub(crate) text: String,
}

impl Reply {
    /// The problem `code` of an error answer, if any.
    pub(crate) fn code(&self) -> Option<&str> {
        self.json.get("code").and_then(Value::as_str)
    }

    /// Status text used as a key in the report: `"201"` or `"409 insufficient_stock"`.
    pub(crate) fn status_key(&self) -> String {
        match self.code() {
            Some(code) if !self.status.is_success() => format!("{} {code}", self.status.as_u16()),
            _ => self.status.as_u16().to_string(),
        }
    }

    /// A string field of the body.
    pub(crate) fn str_field(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }
}

/// A request to make: method, path under the base URL, optional JSON body and idempotency key.
pub(crate) struct Req<'a> {
    pub(crate) method: Method,
    pub(crate) path: &'a str,
    pub(crate) body: Option<&'a Value>,
    pub(crate) idempotency_key: Option<&'a str>,
}

impl<'a> Req<'a> {
    pub(crate) fn get(path: &'a str) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
            idempotency_key: None,
        }
    }

    pub(crate) fn post(path: &'a str, body: &'a Value) -> Self {
        Self {
            method: Method::POST,
            path,
            body: Some(body),
            idempotency_key: None,
        }
    }

    pub(crate) fn put(path: &'a str, body: &'a Value) -> Self {
        Self {
            method: Method::PUT,
            path,
            body: Some(body),
            idempotency_key: None,
        }
    }

    pub(crate) fn idempotent(mut self, key: &'a str) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

#[derive(Clone)]
pub(crate) struct Api {
    http: Client,
    base_url: String,
    bearer: Option<String>,
}

impl Api {
    pub(crate) fn new(base_url: &str, api_key: Option<&str>, timeout: Duration, connections: usize) -> Result<Self> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            bail!("--url must start with http:// or https://, got {base_url:?}");
        }
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(connections + POOL_IDLE_SPARE)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base_url,
            bearer: api_key.map(|k| format!("Bearer {k}")),
        })
    }

    /// Sends one request and reads the whole answer.
    pub(crate) async fn send(&self, req: &Req<'_>) -> Result<Reply, reqwest::Error> {
        let mut builder = self
            .http
            .request(req.method.clone(), format!("{}{}", self.base_url, req.path));
        if let Some(bearer) = &self.bearer {
            builder = builder.header(header::AUTHORIZATION, bearer);
        }
        if let Some(key) = req.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(body) = req.body {
            builder = builder.json(body);
        }
        let response = builder.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, json, text })
    }

    /// Sends one request, records its latency (from `intended`) and class, and
    /// returns the reply when the server answered at all.
    ///
    /// `classify` decides what the scenario expected; transport failures are always errors.
    pub(crate) async fn call(
        &self,
        rec: &Recorder,
        op: &'static str,
        intended: Instant,
        req: &Req<'_>,
        classify: impl FnOnce(&Reply) -> Class,
    ) -> Option<Reply> {
        let result = self.send(req).await;
        let latency = latency_since(intended, Instant::now());
        match result {
            Ok(reply) => {
                let class = classify(&reply);
                rec.record(Sample {
                    op,
                    intended,
                    latency,
                    class,
                    status: &reply.status_key(),
                    body: &reply.text,
                });
                Some(reply)
            }
            Err(e) => {
                let status = transport_key(&e);
                rec.record(Sample {
                    op,
                    intended,
                    latency,
                    class: Class::Error,
                    status: &status,
                    body: &error_chain(&e),
                });
                None
            }
        }
    }

    /// A setup request that must succeed with a 2xx answer.
    pub(crate) async fn must(&self, req: &Req<'_>) -> Result<Reply> {
        let reply = self
            .send(req)
            .await
            .map_err(|e| anyhow::anyhow!("{} {}: {}", req.method, req.path, error_chain(&e)))?;
        if !reply.status.is_success() {
            bail!(
                "{} {} answered {}: {}",
                req.method,
                req.path,
                reply.status,
                crate::recorder::truncate(&reply.text, crate::recorder::SAMPLE_BODY_BYTES_MAX)
            );
        }
        Ok(reply)
    }
}

/// An error with its sources, `outer: inner: innermost`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Report key of a transport failure.
fn transport_key(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else if e.is_request() {
        "request"
    } else {
        "other"
    };
    format!("transport: {kind}")
}

/// The usual classification: any 2xx is the expected success.
pub(crate) fn expect_2xx(reply: &Reply) -> Class {
    if reply.status.is_success() {
        Class::Ok
    } else {
        Class::Error
    }
}

/// `expected` is success; a problem answer with status `status` and code `code` is a rejection.
pub(crate) fn expect_or_reject(
    expected: StatusCode,
    status: StatusCode,
    code: &'static str,
) -> impl FnOnce(&Reply) -> Class {
    move |reply| {
        if reply.status == expected {
            Class::Ok
        } else if reply.status == status && reply.code() == Some(code) {
            Class::Rejected
        } else {
            Class::Error
        }
    }
}
