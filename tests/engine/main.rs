//! Engine tests through the async handle: one test binary, one module per scenario
//! (`sale_model`: flash sales under random bursts, cancels, payments, expiry and restarts).

#[path = "../common/pg.rs"]
mod pg;
mod support;
#[path = "../common/tables.rs"]
mod tables;

mod actors;
mod arbitrary_bytes;
mod bounds;
mod crash_consistency;
mod expiry;
mod flash_sale;
mod lifecycle;
mod lost_log;
mod model;
mod payments;
mod read_model;
mod sale_model;
mod simulation;
mod snapshots;
mod subscribers;
