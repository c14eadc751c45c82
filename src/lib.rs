//! `oms`: an actor-based in-memory order management engine with a write-ahead log.
//!
//! # Layout
//! - [`domain`]: pure state machines (inventory pairs, orders), allocation, log records and the
//!   replay fold. No I/O, no clock.
//! - [`codec`]: the versioned binary encoding of log records and snapshots.

pub mod codec;
pub mod domain;
