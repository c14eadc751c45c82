//! Events out: relays that carry the durable log's events to other systems, at least once and
//! in log order, each a durable log subscriber (`engine::LogSubscriber`) that acknowledges a
//! position only once the other side has taken everything up to it.
//!
//! # Layout
//! - `status.rs`: [`RelayStatus`], what a running relay shows to `/readyz` and `/metrics`.
//! - `backoff.rs`: [`Backoff`], the reconnect delay (exponential, capped).
//! - `amqp.rs`: the RabbitMQ relay: a durable topic exchange, routing key = event type,
//!   persistent messages with the event id as `message_id`, publisher confirms.
//!
//! The events and their ids are the event streams' (`api::api_event`): a consumer sees the
//! same `id` on SSE, on the broker and on webhooks, and deduplicates by it.

pub mod amqp;
pub mod backoff;
pub mod status;

pub use backoff::Backoff;
pub use status::RelayStatus;
