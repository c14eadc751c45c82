//! Test harness for the in-process tests: an engine on a temporary directory with a manual
//! clock, the app around it, and a small request helper.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use oms::api::{ApiConfig, AppState, app};
use oms::domain::Millis;
use oms::engine::{Engine, EngineConfig, ManualClock, SimulatedGateway};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub const T0: Millis = Millis(1_780_000_000_000);

pub struct TestApp {
    pub app: Router,
    pub state: AppState,
    pub engine: Engine,
    pub clock: ManualClock,
    pub gateway: SimulatedGateway,
    pub dir: tempfile::TempDir,
    pub keys: Vec<String>,
}

pub fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        wal: wal::WalConfig {
            sync: wal::SyncPolicy::None,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A response, fully read.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem response with `status` and `code`; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status);
        assert_eq!(body["type"], format!("https://oms.dev/problems/{code}"));
        assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
        body
    }

    /// Asserts `status` and returns the JSON body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.json()
    }
}

impl TestApp {
    pub async fn new() -> TestApp {
        TestApp::with_keys(Vec::new()).await
    }

    pub async fn with_keys(keys: Vec<String>) -> TestApp {
        TestApp::with_config(keys, |_| {}).await
    }

    /// An app whose engine configuration `tweak` adjusts.
    pub async fn with_config(keys: Vec<String>, tweak: fn(&mut EngineConfig)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let gateway = SimulatedGateway::default();
        let mut cfg = config(dir.path());
        tweak(&mut cfg);
        TestApp::open(dir, clock, gateway, keys, cfg).await
    }

    async fn open(
        dir: tempfile::TempDir,
        clock: ManualClock,
        gateway: SimulatedGateway,
        keys: Vec<String>,
        cfg: EngineConfig,
    ) -> TestApp {
        let engine = Engine::open(cfg, Arc::new(clock.clone()), Arc::new(gateway.clone()))
            .await
            .unwrap();
        let state = AppState::with_engine(
            ApiConfig {
                api_keys: keys.clone(),
                ..ApiConfig::default()
            },
            engine.clone(),
        );
        TestApp {
            app: app(state.clone()),
            state,
            engine,
            clock,
            gateway,
            dir,
            keys,
        }
    }

    /// Shuts the engine down and opens the same directory again, as a restart would: event
    /// streams end, every engine handle is dropped (releasing the directory lock), and a new
    /// engine and app take over.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            app,
            state,
            engine,
            clock,
            gateway,
            dir,
            keys,
        } = self;
        state.begin_shutdown();
        engine.shutdown().await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while state
            .metrics()
            .sse_connections
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            assert!(tokio::time::Instant::now() < deadline, "event streams did not end");
            tokio::task::yield_now().await;
        }
        drop((app, state, engine));
        let cfg = config(dir.path());
        TestApp::open(dir, clock, gateway, keys, cfg).await
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp { status, headers, bytes }
    }

    fn builder(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(k) = self.keys.first() {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        b
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(self.builder(Method::GET, uri).body(Body::empty()).unwrap())
            .await
    }

    /// Sends `body` (raw text) as JSON.
    /// Sends the same request twice with `Idempotency-Key: key`: the first answer must have
    /// `status`, the second must be its replay (same status and bytes, marked replayed).
    pub async fn twice(&self, method: Method, uri: &str, body: &str, key: &str, status: u16) -> Resp {
        let headers = [("idempotency-key", key)];
        let first = self.raw(method.clone(), uri, body, &headers).await;
        assert_eq!(first.status, status, "body: {}", String::from_utf8_lossy(&first.bytes));
        let again = self.raw(method, uri, body, &headers).await;
        assert_eq!((again.status, &again.bytes), (first.status, &first.bytes));
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        first
    }

    pub async fn raw(&self, method: Method, uri: &str, body: &str, headers: &[(&str, &str)]) -> Resp {
        let mut b = self.builder(method, uri).header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_string())).unwrap()).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> Resp {
        self.raw(Method::POST, uri, &body.to_string(), &[]).await
    }

    pub async fn put(&self, uri: &str, body: Value) -> Resp {
        self.raw(Method::PUT, uri, &body.to_string(), &[]).await
    }

    /// A warehouse at (lat, lon) with `priority`.
    pub async fn warehouse(&self, id: &str, lat: f64, lon: f64, priority: i64) {
        let r = self
            .put(
                &format!("/v1/warehouses/{id}"),
                json!({"name": format!("Warehouse {id}"), "country": "US", "lat": lat, "lon": lon, "priority": priority}),
            )
            .await;
        assert!(r.status.is_success(), "{}", String::from_utf8_lossy(&r.bytes));
    }

    pub async fn stock(&self, sku: &str, wh: &str, delta: i64) -> Value {
        self.post(
            "/v1/inventory/adjustments",
            json!({"sku": sku, "warehouse_id": wh, "delta": delta, "reason": "receiving"}),
        )
        .await
        .ok(200)
    }

    /// Places an order of `lines` (sku, quantity) at 10.00 each, shipped to New York.
    pub async fn order(&self, user: &str, lines: &[(&str, u64)]) -> Resp {
        self.post("/v1/orders", order_body(user, lines)).await
    }

    pub async fn pair(&self, sku: &str, wh: &str) -> Value {
        self.get(&format!("/v1/inventory/{sku}/{wh}")).await.ok(200)
    }
}

pub fn order_body(user: &str, lines: &[(&str, u64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .map(|(sku, q)| json!({"sku": sku, "quantity": q, "unit_price": "10.00"}))
        .collect();
    json!({
        "user_id": user,
        "currency": "USD",
        "items": items,
        "shipping_address": {"line1": "1 Main St", "city": "New York", "country": "US", "lat": 40.7, "lon": -74.0},
    })
}

/// The value of the unlabelled series `name` in a Prometheus text exposition (integers are
/// written as `1` or `1.0` depending on the metric type, so compare numbers, not text).
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        (series == name).then(|| value.trim().parse().ok()).flatten()
    })
}
