//! `oms`: an actor-based in-memory order management engine with a write-ahead log.
//!
//! # Layout
//! - [`domain`]: pure state machines (inventory pairs, orders), allocation, log records and the
//!   replay fold. No I/O, no clock.
//! - [`codec`]: the versioned binary encoding of log records and snapshots.
//! - [`engine`]: the actor runtime: SKU-warehouse and order actors, placement, the log shell,
//!   expiry, snapshots, recovery; [`engine::Engine`] is its async handle.
//! - [`api`]: the HTTP front door (axum): routes, wire types, problem errors, idempotency,
//!   Server-Sent Events, metrics, protected mode. The only module that knows HTTP and JSON.
//! - [`read_model`]: the PostgreSQL read model, a projection of the log into tables for SQL
//!   reports (off unless `--postgres-url` is given).
//! - [`cluster`]: cluster mode: the replicated log on NATS JetStream, the lease, the standby.
//! - [`integrations`]: starts the read model and the RabbitMQ relay when their flags ask.
//! - [`server`]: the `oms` command line: flags, startup order, signals, graceful shutdown.

pub mod api;
pub mod cluster;
pub mod codec;
pub mod domain;
pub mod engine;
pub mod integrations;
pub mod read_model;
pub mod relay;
pub mod server;
