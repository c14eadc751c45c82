//! `/metrics`: Prometheus text exposition (0.0.4) through `prometheus-client`.
//!
//! Three sources, encoded by the crate:
//! - HTTP series, counted per request by the `observe` middleware, keyed by method, route
//!   template (axum's `MatchedPath`, so `/v1/orders/{id}` and not every order id) and status,
//!   which bounds their number by the route table.
//! - Business counters, counted from what the engine made durable (the feed of records, which
//!   also carries the work the engine does on its own, such as expiry) and, for placements
//!   refused (which log nothing), from the handler's result. The engine knows nothing of them.
//! - Engine, process and build gauges, read when scraped.

use super::process;
use crate::cluster::{Role, StatusView};
use crate::domain::order::OrderEvent;
use crate::domain::{Entry, Record};
use crate::engine::{Engine, EngineStats, SubscriberInfo};
use crate::relay::RelayStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast::error::RecvError;

/// Upper bounds of the request latency buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of the HTTP series. Static strings: recording a request allocates nothing new
/// once its series exists.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_SECONDS)
}

/// The counters of business outcomes. Clones share their values (the feed task holds one).
#[derive(Clone, Default)]
struct Business {
    orders_placed: Counter,
    placements_rejected: Family<ReasonLabel, Counter>,
    payments: Family<OutcomeLabel, Counter>,
    reservations_expired: Counter,
    refunds: Family<OutcomeLabel, Counter>,
    /// Records the feed task missed because it fell behind the feed (its counts are then low).
    feed_records_missed: Counter,
}

impl Business {
    /// Counts what one durable record did.
    fn count(&self, record: &Record) {
        match &record.entry {
            Entry::OrderPlaced { .. } | Entry::OrderPlacedInSale { .. } => {
                self.orders_placed.inc();
            }
            Entry::OrderUpdated { events, .. } => events.iter().for_each(|e| self.count_event(e)),
            _ => {}
        }
    }

    fn count_event(&self, event: &OrderEvent) {
        let outcome = |o| OutcomeLabel { outcome: o };
        match event {
            OrderEvent::PaymentCaptured { .. } => {
                self.payments.get_or_create(&outcome("captured")).inc();
            }
            OrderEvent::PaymentDeclined { .. } => {
                self.payments.get_or_create(&outcome("declined")).inc();
            }
            OrderEvent::PaymentFailed { .. } => {
                self.payments.get_or_create(&outcome("failed")).inc();
            }
            // Expiry is the only cancellation the engine decides on its own clock.
            OrderEvent::Cancelled { actor, .. } if actor == "system" => {
                self.reservations_expired.inc();
            }
            OrderEvent::RefundSucceeded { .. } => {
                self.refunds.get_or_create(&outcome("succeeded")).inc();
            }
            OrderEvent::RefundFailed { .. } => {
                self.refunds.get_or_create(&outcome("failed")).inc();
            }
            _ => {}
        }
    }
}

/// The metrics of one server.
pub struct Metrics {
    /// Series updated as things happen (HTTP and business); the engine and process series are
    /// read at scrape time into a registry of their own.
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    business: Business,
    /// Open event-stream connections (shared with each stream's task).
    pub sse_connections: Arc<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: Family<HttpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let business = Business::default();
        registry.register(
            "oms_http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        registry.register(
            "oms_http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register(
            "oms_orders_placed",
            "Orders placed (durable)",
            business.orders_placed.clone(),
        );
        registry.register(
            "oms_placements_rejected",
            "Placement requests refused, by problem code (nothing was reserved)",
            business.placements_rejected.clone(),
        );
        registry.register(
            "oms_payments",
            "Payment attempts settled, by outcome (captured, declined, failed)",
            business.payments.clone(),
        );
        registry.register(
            "oms_reservations_expired",
            "Orders cancelled because their reservation expired before payment",
            business.reservations_expired.clone(),
        );
        registry.register(
            "oms_refunds",
            "Refunds settled, by outcome (succeeded, failed)",
            business.refunds.clone(),
        );
        registry.register(
            "oms_metrics_feed_records_missed",
            "Durable records the business counters missed by falling behind the feed",
            business.feed_records_missed.clone(),
        );
        let build = Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]);
        registry.register("oms_build", "The running build", build);
        Metrics {
            registry,
            http_requests,
            http_duration,
            business,
            sse_connections: Arc::default(),
        }
    }
}

impl Metrics {
    pub fn observe(&self, method: &'static str, route: &'static str, status: u16, seconds: f64) {
        let labels = HttpLabels { method, route, status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration.get_or_create(&labels).observe(seconds);
    }

    /// Counts a placement the server refused, by its problem code.
    pub fn placement_rejected(&self, code: &'static str) {
        self.business
            .placements_rejected
            .get_or_create(&ReasonLabel { reason: code })
            .inc();
    }

    /// Counts the business outcomes of every record the engine makes durable from now on, in
    /// a task that ends with the engine's feed.
    pub fn follow(&self, engine: &Engine) {
        let (mut feed, _) = engine.subscribe();
        let business = self.business.clone();
        tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(committed) => business.count(&committed.record),
                    Err(RecvError::Lagged(missed)) => {
                        business.feed_records_missed.inc_by(missed);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    /// The exposition text. `engine` is `None` while the engine recovers.
    pub fn render(
        &self,
        engine: Option<&Engine>,
        ready: bool,
        relay: Option<&RelayStatus>,
        cluster: Option<&StatusView>,
    ) -> String {
        let mut scrape = Registry::default();
        scrape.register(
            "oms_ready",
            "1 when recovered and the log is writable",
            ConstGauge::new(ready as i64),
        );
        scrape.register(
            "oms_sse_connections",
            "Open event-stream connections",
            ConstGauge::new(self.sse_connections.load(Ordering::Relaxed) as i64),
        );
        if let Some(engine) = engine {
            let stats = engine.stats();
            register_engine(&mut scrape, &stats);
            let subscribers = engine.subscribers();
            register_subscribers(&mut scrape, &subscribers, &stats);
            if let Some(relay) = relay {
                register_relay(&mut scrape, relay, &subscribers);
            }
        }
        if let Some(c) = cluster {
            register_cluster(&mut scrape, c);
        }
        process::register(&mut scrape);
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        let _ = encode(&mut out, &scrape);
        out
    }
}

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    r.register(name, help, ConstCounter::new(v));
}

/// Cluster mode: this node's role and replication lag.
fn register_cluster(r: &mut Registry, c: &StatusView) {
    let is = |role| f64::from(u8::from(c.role == role));
    gauge(
        r,
        "oms_cluster_primary",
        "1 while this node is the cluster's primary",
        is(Role::Primary),
    );
    gauge(
        r,
        "oms_cluster_standby",
        "1 while this node is a standby",
        is(Role::Standby),
    );
    gauge(
        r,
        "oms_cluster_deposed",
        "1 once this node was deposed (it acknowledges nothing more)",
        is(Role::Deposed),
    );
    gauge(
        r,
        "oms_cluster_lag_messages",
        "Cluster stream messages not yet in this node's log",
        c.lag() as f64,
    );
    gauge(
        r,
        "oms_cluster_applied_sequence",
        "Cluster stream sequence this node's log holds everything up to",
        c.applied_sequence as f64,
    );
}

fn gauge(r: &mut Registry, name: &str, help: &str, v: f64) {
    r.register(name, help, ConstGauge::new(v));
}

fn register_engine(r: &mut Registry, st: &EngineStats) {
    if let Some(w) = &st.wal {
        register_wal(r, w);
    }
    register_actors(r, st);
    counter(r, "oms_snapshots", "Snapshots taken since start", st.snapshots_taken);
    counter(
        r,
        "oms_placement_retries",
        "Placements that re-allocated after losing a race for stock",
        st.placements_retried_total,
    );
    gauge(
        r,
        "oms_idempotency_keys",
        "Stored idempotent responses",
        st.idempotency_keys as f64,
    );
    gauge(
        r,
        "oms_idempotency_bytes",
        "Approximate bytes of the stored idempotent responses",
        st.idempotency_bytes as f64,
    );
    counter(
        r,
        "oms_idempotency_evicted_early",
        "Idempotent responses forgotten before 24 h because a bound was reached",
        st.idempotency_evicted_early_total,
    );
}

/// The log's counters.
fn register_wal(r: &mut Registry, w: &wal::WalStats) {
    counter(r, "oms_wal_records", "Records appended to the log", w.records_appended);
    counter(r, "oms_wal_bytes", "Bytes written to log segments", w.bytes_written);
    counter(r, "oms_wal_batches", "Group-commit writes", w.batches);
    counter(r, "oms_wal_fsyncs", "fdatasync calls on segments", w.fsyncs);
    gauge(
        r,
        "oms_wal_batch_records_mean",
        "Mean records per group commit",
        w.batch_records_mean as f64,
    );
    gauge(
        r,
        "oms_wal_batch_records_last",
        "Records in the last group commit",
        w.batch_records_last as f64,
    );
    counter(
        r,
        "oms_wal_segments_rolled",
        "Segments created by rolling",
        w.segments_rolled,
    );
}

/// Actors, pairs and orders, mailboxes, the last recovery.
fn register_actors(r: &mut Registry, st: &EngineStats) {
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Kind {
        kind: &'static str,
    }
    let actors = Family::<Kind, prometheus_client::metrics::gauge::Gauge>::default();
    actors
        .get_or_create(&Kind { kind: "pair" })
        .set(st.pair_actors_active as i64);
    actors
        .get_or_create(&Kind { kind: "order" })
        .set(st.order_actors_active as i64);
    r.register("oms_actors_active", "Actors with a running task, by kind", actors);
    gauge(r, "oms_pairs", "SKU-warehouse pairs known", st.pairs as f64);
    gauge(r, "oms_orders", "Orders known", st.orders as f64);
    counter(
        r,
        "oms_mailbox_full",
        "Sends that found an actor mailbox full",
        st.mailbox_full_total,
    );
    gauge(
        r,
        "oms_recovery_duration_seconds",
        "Time the last recovery took",
        st.recovery_ms as f64 / 1000.0,
    );
    gauge(
        r,
        "oms_recovered_records",
        "Log records replayed by the last recovery",
        st.recovered_records as f64,
    );
}

/// The read model projector's series (only when `--postgres-url` turned it on).
pub(crate) fn render_read_model(f: &crate::read_model::ReadModelFigures) -> String {
    let mut r = Registry::default();
    gauge(
        &mut r,
        "oms_read_model_position",
        "Last log record whose rows are committed in PostgreSQL",
        f.position as f64,
    );
    gauge(
        &mut r,
        "oms_read_model_lag_records",
        "Log records published by the engine and not yet committed in PostgreSQL",
        f.lag_records as f64,
    );
    gauge(
        &mut r,
        "oms_read_model_connected",
        "1 while the projector holds a connection to PostgreSQL",
        f64::from(u8::from(f.connected)),
    );
    counter(
        &mut r,
        "oms_read_model_records",
        "Log records projected since start",
        f.records_total,
    );
    counter(
        &mut r,
        "oms_read_model_batches",
        "Transactions committed since start",
        f.batches_total,
    );
    counter(
        &mut r,
        "oms_read_model_errors",
        "Projector runs ended by an error (PostgreSQL down, refused statement); each is retried",
        f.errors_total,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

/// Durable log subscribers (relays, projections): position, lag, what retention cost them.
fn register_subscribers(r: &mut Registry, subs: &[SubscriberInfo], st: &EngineStats) {
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Name {
        subscriber: String,
    }
    let lag = Family::<Name, prometheus_client::metrics::gauge::Gauge>::default();
    let acked = Family::<Name, prometheus_client::metrics::gauge::Gauge>::default();
    let lost = Family::<Name, Counter>::default();
    for s in subs {
        let name = Name {
            subscriber: s.name.clone(),
        };
        lag.get_or_create(&name)
            .set(i64::try_from(s.lag_records).unwrap_or(i64::MAX));
        acked
            .get_or_create(&name)
            .set(i64::try_from(s.acked_lsn).unwrap_or(i64::MAX));
        lost.get_or_create(&name).inc_by(s.lost_records_total);
    }
    r.register(
        "oms_subscriber_lag_records",
        "Log records published after the position a durable subscriber acknowledged",
        lag,
    );
    r.register(
        "oms_subscriber_acked_lsn",
        "The log position a durable subscriber acknowledged (stored durably)",
        acked,
    );
    r.register(
        "oms_subscriber_records_lost",
        "Records a durable subscriber skipped because the log's retention bound deleted them",
        lost,
    );
    counter(
        r,
        "oms_subscriber_retention_exceeded",
        "Snapshots that deleted log records a durable subscriber still needed (retention bound reached)",
        st.subscriber_retention_exceeded_total,
    );
}

/// The RabbitMQ relay: its lag (its subscriber's), connection, what the broker confirmed.
fn register_relay(r: &mut Registry, relay: &RelayStatus, subs: &[SubscriberInfo]) {
    let name = relay.subscriber();
    let lag = subs.iter().find(|s| s.name == name).map_or(0, |s| s.lag_records);
    gauge(
        r,
        "oms_relay_lag_records",
        "Log records made durable after the last position the broker confirmed",
        lag as f64,
    );
    gauge(
        r,
        "oms_relay_connected",
        "1 while the RabbitMQ relay is connected",
        f64::from(u8::from(relay.connected())),
    );
    counter(
        r,
        "oms_relay_published",
        "Messages the broker confirmed since start",
        relay.published_total(),
    );
    counter(
        r,
        "oms_relay_reconnects",
        "Broker connections lost or refused since start",
        relay.reconnects_total(),
    );
}
