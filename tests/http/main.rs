//! HTTP tests: one test binary, one module per concern.
//!
//! - `admin`: the dashboard's static routes and assets (the browser tests are `tests/browser`).
//! - `api`: every endpoint and error code through `app(state).oneshot(...)`, no socket.
//! - `arbitrary_bodies`: random and mangled JSON bodies on every POST and PUT (property test).
//! - `bounds`: idempotency retention and bounds, no inventory from a refused adjustment.
//! - `commerce`: order email, note, tags and metadata, `PATCH` edits, searching orders.
//! - `events`: server-sent events and `Last-Event-ID` resume through the app.
//! - `payment_faults`: the simulated gateway's fault tokens: lost and late answers, declined
//!   refunds, retries after a restart or the settler.
//! - `process`: the real `oms` binary on a free port: lifecycle, flash sale, kill -9 and
//!   restart, SIGTERM, a locked data directory, protected mode.

mod support;

mod admin;
mod api;
mod arbitrary_bodies;
mod bounds;
mod commerce;
mod events;
mod payment_faults;
mod process;
