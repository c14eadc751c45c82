//! HTTP tests: one test binary, one module per concern.
//!
//! - `admin`: the dashboard's static routes and assets (the browser tests are `tests/browser`).
//! - `api`: every endpoint and error code through `app(state).oneshot(...)`, no socket.
//! - `arbitrary_bodies`: random and mangled JSON bodies on every POST and PUT (property test).
//! - `catalog`: issue 11: the stock catalogue, unknown SKUs, currencies, stream tokens,
//!   `Location`, `GET /`.
//! - `bounds`: idempotency retention and bounds, no inventory from a refused adjustment.
//! - `commerce`: order email, note, tags and metadata, `PATCH` edits, searching orders.
//! - `events`: server-sent events and `Last-Event-ID` resume through the app.
//! - `mirror`: events that mirror state: the inventory fold, state changes, `?types=`, the
//!   event catalogue's schemas (`sse`: the stream reader both use).
//! - `payment_faults`: the simulated gateway's fault tokens: lost and late answers, declined
//!   refunds, retries after a restart or the settler.
//! - `process`: the real `oms` binary on a free port: lifecycle, flash sale, kill -9 and
//!   restart, SIGTERM, a locked data directory, protected mode, the quick start of docs/API.md run twice.
//! - `sales`: flash sales: the limit race, windows on the manual clock, prices, limits given
//!   back, admission, events, restart.
//! - `read_model`: the real binary with `--postgres-url`: the PostgreSQL tables equal what the
//!   API reports after a mixed load, kill -9 and restart, and after `oms read-model rebuild`.

#[path = "../common/pg.rs"]
mod pg;
mod sse;
mod support;
#[path = "../common/tables.rs"]
mod tables;

mod admin;
mod api;
mod arbitrary_bodies;
mod bounds;
mod catalog;
mod commerce;
mod events;
mod mirror;
mod payment_faults;
mod process;
mod read_model;
mod sales;
mod torture;
