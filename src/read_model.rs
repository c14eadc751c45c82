//! The PostgreSQL read model: a projection of the log into tables that analysts query in SQL
//! (`docs/READ_MODEL.md`). The engine stays the system of record; this module only reads the
//! durable log and writes PostgreSQL, and the engine never waits for it.
//!
//! Where things are:
//! - `projection.rs`: the projector's own fold of the log, and what a batch of records changes,
//!   as rows (pure);
//! - `statements.rs`: those rows as multi-row upserts (pure);
//! - `writer.rs`: the connection, the migrations (`migrations/`), and the one transaction that
//!   writes a batch together with its log position (exactly once);
//! - `source.rs`: the log up to the stored position (folded, not written), and the engine's
//!   durable log subscriber `read-model` for what follows (it pins the log segments the
//!   projector still needs);
//! - `projector.rs`: the task that ties them together, retries with backoff, and counts;
//! - `rebuild.rs`: `oms read-model rebuild`: the tables from the snapshot and the log.
//!
//! Architecture invariants: the tables only ever hold the fold of a prefix of the log, and
//! `read_model_position` names that prefix, in the same transaction. The engine's request
//! path never touches this module.

pub mod projection;
pub mod projector;
pub mod rebuild;
mod source;
pub mod statements;
pub mod status;
pub mod writer;

pub use projector::{ReadModelConfig, spawn};
pub use source::SUBSCRIBER_NAME;
pub use status::{ReadModelFigures, ReadModelStatus};

use crate::engine::EngineError;

/// Why the projector stopped a run (it starts again after a backoff) or a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// PostgreSQL refused a statement or the connection failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration could not be applied.
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    /// The stored position is not where this projector left it: another writer uses the same
    /// database, or it was reset. The projector starts again from what is stored.
    #[error("the read model's position moved: expected {expected:?}, found {found:?}")]
    PositionMoved { expected: Option<u64>, found: Option<u64> },
    /// The database holds records this log does not (another data directory's read model, or
    /// a log that lost its tail): `oms read-model rebuild` starts it afresh.
    #[error("the read model is at record {position}, beyond the log's last record {log_last}; rebuild it")]
    AheadOfLog { position: u64, log_last: u64 },
    /// The log no longer holds the next record the projector needs (a snapshot covered it).
    #[error("the log no longer holds record {next_lsn} (it starts at {first_lsn})")]
    BehindLog { next_lsn: u64, first_lsn: u64 },
    /// The engine failed to read its log or snapshot.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The engine's log subscriber failed (among others: it fell behind the log's retention
    /// bound; the next run starts from the newest snapshot).
    #[error("log subscriber: {0}")]
    Subscriber(#[from] crate::engine::SubscriberError),
    /// The engine shut down.
    #[error("the engine is closed")]
    EngineClosed,
}
