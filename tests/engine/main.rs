//! Engine tests through the async handle: one test binary, one module per scenario
//! (`sale_model`: flash sales under random bursts, cancels, payments, expiry and restarts).

mod support;

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
mod sale_model;
mod simulation;
mod snapshots;
mod subscribers;
