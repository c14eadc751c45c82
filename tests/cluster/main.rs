//! Cluster mode on a real NATS JetStream (issue 17): real `oms` processes, a primary and a
//! standby sharing a cluster log; kill -9 of the primary and takeover; fencing of a deposed
//! primary.
//!
//! They need NATS with JetStream at `OMS_TEST_NATS_URL` (default nats://127.0.0.1:4222).
//! Without it each test says it was skipped and passes; with `OMS_REQUIRE_NATS=1` (CI) it fails.
//! Every wait is on a condition with a deadline; takeover times are printed, never asserted.

mod fencing;
mod nodes;
mod support;

mod failover;
mod repeated;
