//! The projector task: reads the durable log after the stored position and writes each batch
//! with its position in one transaction. It never slows the engine: it reads what is already
//! durable, on its own task, and when PostgreSQL is down it waits and starts again.
//!
//! A run: connect and migrate; read the stored position `P`; build the fold at `P` (the
//! newest snapshot, plus the log up to `P`, folded without writing); then follow the log.
//! When `P` is behind the newest snapshot (or nothing is stored yet), the fold cannot be
//! rebuilt at `P`: the snapshot's whole state is upserted instead, with the snapshot's
//! position, in one transaction (rows are keyed, so what was there already is rewritten,
//! never duplicated). Any error ends the run: the fold may be ahead of what committed, so the
//! next run builds it again from what is stored, after a backoff doubling from
//! `retry_first_ms` to `retry_max_ms`.

use super::ReadModelError;
use super::projection::{Changes, Projection};
use super::source::{fold_to, subscribe};
use super::status::ReadModelStatus;
use super::writer::Writer;
use crate::domain::Record;
use crate::engine::{Committed, Engine, LogSubscriber, SubscriberError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most records in one transaction.
pub const BATCH_RECORDS_MAX: usize = 4096;
/// Most orders in one statement of a full projection (a snapshot's state, a rebuild).
pub const CHUNK_ORDERS_MAX: usize = 2048;
pub const RETRY_FIRST_MS: u64 = 200;
pub const RETRY_MAX_MS: u64 = 10_000;

/// How the projector connects and paces itself.
#[derive(Clone, Debug)]
pub struct ReadModelConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    pub batch_records_max: usize,
    pub retry_first_ms: u64,
    pub retry_max_ms: u64,
}

impl ReadModelConfig {
    pub fn new(url: impl Into<String>) -> ReadModelConfig {
        ReadModelConfig {
            url: url.into(),
            batch_records_max: BATCH_RECORDS_MAX,
            retry_first_ms: RETRY_FIRST_MS,
            retry_max_ms: RETRY_MAX_MS,
        }
    }
}

/// Starts the projector; it ends when `stop` turns true or the engine closes.
pub fn spawn(
    engine: Engine,
    config: ReadModelConfig,
    status: Arc<ReadModelStatus>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff_ms = config.retry_first_ms;
        loop {
            let result = tokio::select! {
                r = run(&engine, &config, &status, &mut backoff_ms) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match result {
                ReadModelError::EngineClosed | ReadModelError::Subscriber(SubscriberError::Closed) => return,
                e => {
                    tracing::warn!(error = %e, retry_ms = backoff_ms, "read model: projector stopped; retrying");
                    status.failed(e.to_string());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff_ms = (backoff_ms * 2).min(config.retry_max_ms);
        }
    })
}

/// One run, until an error. A committed batch resets the backoff.
async fn run(
    engine: &Engine,
    config: &ReadModelConfig,
    status: &ReadModelStatus,
    backoff_ms: &mut u64,
) -> ReadModelError {
    match follow(engine, config, status, backoff_ms).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn follow(
    engine: &Engine,
    config: &ReadModelConfig,
    status: &ReadModelStatus,
    backoff_ms: &mut u64,
) -> Result<std::convert::Infallible, ReadModelError> {
    let mut writer = Writer::connect(&config.url).await?;
    writer.migrate().await?;
    status.set_connected(true);
    let (mut projection, mut source) = start(engine, &mut writer, status).await?;
    loop {
        let batch = source.next_batch(config.batch_records_max).await?;
        let n = batch.len() as u64;
        let from = projection.last_lsn();
        let changes = projection.apply_batch(batch.into_iter().map(owned));
        writer.write(Some(from), &changes).await?;
        status.committed(changes.last_lsn, n);
        // After the commit: the log may now drop what the read model holds.
        source.ack(changes.last_lsn).await?;
        *backoff_ms = config.retry_first_ms;
    }
}

/// The fold at the stored position (writing the snapshot's state first if the position is
/// behind it), and a source of the records after it.
async fn start(
    engine: &Engine,
    writer: &mut Writer,
    status: &ReadModelStatus,
) -> Result<(Projection, LogSubscriber), ReadModelError> {
    let stored = writer.position().await?;
    let log_last = engine.published_lsn();
    if let Some(p) = stored.filter(|&p| p > log_last) {
        return Err(ReadModelError::AheadOfLog { position: p, log_last });
    }
    let e = engine.clone();
    let base = tokio::task::spawn_blocking(move || e.snapshot_state())
        .await
        .map_err(|_| ReadModelError::EngineClosed)??;
    let mut projection = Projection::new(base);
    match stored {
        Some(p) if p >= projection.last_lsn() => {
            fold_to(engine, &mut projection, p).await?;
            tracing::info!(position = p, "read model: resuming");
        }
        _ => {
            let chunks = chunks(projection.everything(), CHUNK_ORDERS_MAX);
            writer.write_all(stored, &chunks).await?;
            tracing::info!(
                position = projection.last_lsn(),
                "read model: wrote the snapshot's state"
            );
        }
    }
    status.set_position(projection.last_lsn());
    let source = subscribe(engine, projection.last_lsn()).await?;
    Ok((projection, source))
}

/// A record the projector can fold (the feed shares it with other readers).
fn owned(c: Committed) -> (u64, Record) {
    (c.lsn, Arc::unwrap_or_clone(c.record))
}

/// A whole state's changes in pieces of at most `orders_max` orders, the last carrying the
/// warehouses and pairs (any piece carries the position; the writer stores the last one's).
pub fn chunks(mut all: Changes, orders_max: usize) -> Vec<Changes> {
    let mut out = Vec::new();
    while all.orders.len() > orders_max {
        let rest = all.orders.split_off(orders_max);
        out.push(Changes {
            last_lsn: all.last_lsn,
            orders: std::mem::replace(&mut all.orders, rest),
            ..Changes::default()
        });
    }
    out.push(all);
    out
}
