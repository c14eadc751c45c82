//! The RabbitMQ relay: every event of the durable log, published to a durable topic exchange
//! (`oms.events` by default) at least once, in log order.
//!
//! Each event is one persistent message: routing key = the event type (`order.created`,
//! `order.state_changed`, …), `message_id` = the event id (`"{lsn}.{idx}"`, the SSE id),
//! `content_type` `application/json`, `timestamp` = when the change happened (seconds), an
//! `order_id` header on order events, and the body of `api_event::envelope`.
//!
//! The protocol (argued for at-least-once, in order):
//! 1. One connection, one channel in confirm mode: the broker acknowledges every message
//!    after it has taken responsibility for it (persisted, for durable queues).
//! 2. The relay reads batches from its durable subscriber (`amqp-relay`) and publishes their
//!    events in order, without waiting; the confirmations of a batch are awaited by a second
//!    task while the next batch is published (a bounded pipeline of `PIPELINE_BATCHES_MAX`).
//! 3. Only when every message of a batch is confirmed is the batch's last LSN acknowledged
//!    to the subscriber (fsync'd). A crash before that re-publishes the batch after the
//!    restart: consumers deduplicate by `message_id`.
//! 4. Any failure (connection lost, a nack, a channel error) drops the connection, rewinds
//!    the subscriber to its acknowledged position and reconnects after a backoff (`Backoff`,
//!    100 ms doubling to 30 s). Orders keep flowing meanwhile; the log keeps what the relay
//!    still needs (within `subscriber_retention_bytes_max`), and the lag is a metric.
//!
//! `inventory.changed` carries the figures the SSE streams give it: a record from the feed
//! carries the feed's; for records read back from the log the relay keeps the same fold a
//! replaying stream keeps, seeded the same way (`api::log_figures::LogFigures`).

use super::backoff::Backoff;
use super::status::RelayStatus;
use crate::api::api_event::{ApiEvent, EventMapper, envelope, event_id, record_at};
use crate::api::log_figures::LogFigures;
use crate::engine::{Committed, Engine, SubscriberAcker, SubscriberError};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use lapin::{Confirmation, PublisherConfirm};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The durable subscriber the relay reads through (its position file is
/// `data/subscribers/amqp-relay.pos`).
pub const SUBSCRIBER: &str = "amqp-relay";
/// Default exchange.
pub const EXCHANGE_DEFAULT: &str = "oms.events";
/// Log records per published batch.
pub const BATCH_RECORDS_MAX: usize = 1024;
/// Batches published and waiting for their confirmations at once.
pub const PIPELINE_BATCHES_MAX: usize = 4;
/// Reconnect backoff: first delay and cap, in milliseconds.
pub const RECONNECT_FIRST_MS: u64 = 100;
pub const RECONNECT_MAX_MS: u64 = 30_000;

/// How the relay is configured.
#[derive(Clone, Debug)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost` (the vhost `/` is written `%2f`).
    pub url: String,
    /// The topic exchange, declared durable if missing. 1-255 bytes.
    pub exchange: String,
}

/// Why the relay dropped its connection.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker refused (nacked) message {0}")]
    Nacked(String),
    #[error("{0}")]
    Subscriber(#[from] SubscriberError),
    #[error("the confirmation task ended")]
    ConfirmTaskGone,
    #[error("the log could not be read for the stock figures")]
    LogRead,
}

/// Records to their events, with the figures the SSE streams give `inventory.changed`.
struct Mapper {
    engine: Engine,
    events: EventMapper,
    figures: LogFigures,
}

impl Mapper {
    fn new(engine: Engine) -> Mapper {
        Mapper {
            events: EventMapper::new(engine.clone()),
            figures: LogFigures::default(),
            engine,
        }
    }

    async fn events(&mut self, c: &Committed) -> Result<Vec<ApiEvent>, RelayError> {
        let figures = self
            .figures
            .after(&self.engine, c)
            .await
            .map_err(|_| RelayError::LogRead)?;
        Ok(self.events.events(c, &figures).await)
    }
}

/// Starts the relay in a task of its own; it runs until `shutdown` turns true or the engine
/// shuts down. Returns its status.
pub fn start(engine: Engine, config: AmqpConfig, shutdown: watch::Receiver<bool>) -> RelayStatus {
    let status = RelayStatus::new(SUBSCRIBER);
    let relay = Relay {
        engine,
        config,
        status: status.clone(),
    };
    tokio::spawn(relay.run(shutdown));
    status
}

struct Relay {
    engine: Engine,
    config: AmqpConfig,
    status: RelayStatus,
}

impl Relay {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut sub = match self.engine.subscriber(SUBSCRIBER, 0).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the RabbitMQ relay cannot open its log subscriber; it is not running");
                self.status.failed(e.to_string());
                return;
            }
        };
        let mut backoff = Backoff::new(RECONNECT_FIRST_MS, RECONNECT_MAX_MS);
        let mut mapper = Mapper::new(self.engine.clone());
        loop {
            let outcome = tokio::select! {
                r = self.connected(&mut sub, &mut mapper, &mut backoff) => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let Err(e) = outcome;
            if let RelayError::Subscriber(SubscriberError::Closed) = e {
                return;
            }
            if let RelayError::Subscriber(SubscriberError::BehindRetention { .. }) = e {
                tracing::error!(error = %e, "RabbitMQ relay: events were lost to the log's retention bound");
                if let Err(e) = sub.skip_lost().await {
                    tracing::error!(error = %e, "RabbitMQ relay: the position after the gap cannot be stored");
                }
            }
            self.status.failed(e.to_string());
            sub.rewind();
            let delay = backoff.next_delay_ms();
            tracing::warn!(error = %e, retry_in_ms = delay, "RabbitMQ relay: disconnected");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    /// Connects and publishes until something fails.
    async fn connected(
        &self,
        sub: &mut crate::engine::LogSubscriber,
        mapper: &mut Mapper,
        backoff: &mut Backoff,
    ) -> Result<std::convert::Infallible, RelayError> {
        let conn = Connection::connect(&self.config.url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let exchange = ShortString::from(self.config.exchange.as_str());
        channel
            .exchange_declare(exchange.clone(), ExchangeKind::Topic, durable, FieldTable::default())
            .await?;
        self.status.set_connected(true);
        backoff.succeeded();
        tracing::info!(exchange = %self.config.exchange, from_lsn = sub.next_lsn(), "RabbitMQ relay: connected");
        let (tx, rx) = mpsc::channel(PIPELINE_BATCHES_MAX);
        let mut confirmer = tokio::spawn(confirm(rx, sub.acker(), self.status.clone()));
        let publishing = publish_loop(sub, mapper, &channel, &exchange, &tx);
        let failed = tokio::select! {
            Err(e) = publishing => e,
            r = &mut confirmer => match r {
                Ok(Err(e)) => e,
                Ok(Ok(())) | Err(_) => RelayError::ConfirmTaskGone,
            },
        };
        // Batches still waiting for confirmations are published again after the reconnect.
        confirmer.abort();
        let _ = conn.close(0, "relay reconnecting".into()).await;
        Err(failed)
    }
}

/// A published batch: its last LSN, how many messages, and their confirmations in order.
struct InFlight {
    last_lsn: u64,
    confirms: Vec<(String, PublisherConfirm)>,
}

/// Publishes batch after batch; hands each batch's confirmations to the confirmation task.
async fn publish_loop(
    sub: &mut crate::engine::LogSubscriber,
    mapper: &mut Mapper,
    channel: &Channel,
    exchange: &ShortString,
    tx: &mpsc::Sender<InFlight>,
) -> Result<std::convert::Infallible, RelayError> {
    loop {
        let batch = sub.next_batch(BATCH_RECORDS_MAX).await?;
        let Some(last_lsn) = batch.last().map(|c| c.lsn) else {
            continue;
        };
        let mut confirms = Vec::with_capacity(batch.len() * 2);
        for c in &batch {
            for (idx, ev) in mapper.events(c).await?.iter().enumerate() {
                let confirm = publish(channel, exchange, c, idx, ev).await?;
                confirms.push((event_id(c.lsn, idx), confirm));
            }
        }
        if tx.send(InFlight { last_lsn, confirms }).await.is_err() {
            return Err(RelayError::ConfirmTaskGone);
        }
    }
}

/// Publishes one event (without waiting for its confirmation).
async fn publish(
    channel: &Channel,
    exchange: &ShortString,
    c: &Committed,
    idx: usize,
    ev: &ApiEvent,
) -> Result<PublisherConfirm, RelayError> {
    let body = envelope(c.lsn, idx, ev).to_string();
    let mut props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(ShortString::from(event_id(c.lsn, idx)))
        .with_content_type("application/json".into())
        .with_type(ShortString::from(ev.kind));
    if let Some(at) = record_at(&c.record) {
        props = props.with_timestamp(at.0 / 1000);
    }
    if let Some(order) = ev.order_id {
        let mut headers = FieldTable::default();
        headers.insert(
            "order_id".into(),
            AMQPValue::LongString(LongString::from(order.to_string())),
        );
        props = props.with_headers(headers);
    }
    let routing_key = ShortString::from(ev.kind);
    let options = BasicPublishOptions::default();
    Ok(channel
        .basic_publish(exchange.clone(), routing_key, options, body.as_bytes(), props)
        .await?)
}

/// Awaits each batch's confirmations in order and acknowledges its last LSN once all are
/// acks; ends at the first failure (the publisher then fails too and the relay reconnects).
async fn confirm(
    mut rx: mpsc::Receiver<InFlight>,
    acker: SubscriberAcker,
    status: RelayStatus,
) -> Result<(), RelayError> {
    while let Some(batch) = rx.recv().await {
        let n = batch.confirms.len() as u64;
        for (id, confirm) in batch.confirms {
            match confirm.await? {
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
                Confirmation::Nack(_) => return Err(RelayError::Nacked(id)),
            }
        }
        acker.ack(batch.last_lsn).await?;
        status.published(n);
    }
    Ok(())
}
