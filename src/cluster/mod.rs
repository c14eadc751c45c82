//! Cluster mode (issue 17): a primary and warm standbys sharing one replicated log, a NATS
//! JetStream stream, with leadership by a lease in a JetStream key-value bucket. Off unless
//! `--cluster-url` is given; the engine sees only its [`crate::engine::ReplicatedCommit`] seam.
//!
//! # Layout
//! - `config.rs`: the flags ([`ClusterArgs`]) and the names derived from the cluster's name;
//! - `status.rs`: [`ClusterStatus`], what `GET /v1/cluster` and the metrics read;
//! - `batch.rs`: the stream message of one batch of log records (pure);
//! - `replicator.rs`: the primary's replicated commit, fenced by the expected last sequence;
//! - `lease.rs`: the leadership lease (take, renew, lose);
//! - `follower.rs`: the standby: copy the stream into the local log, take over.
//!
//! The story, the fencing argument and what a partition does are in ARCHITECTURE.md,
//! "Cluster mode".

pub mod batch;
pub mod config;
pub mod follower;
pub mod lease;
pub mod replicator;
pub mod status;

pub use config::{ClusterArgs, ClusterConfig};
pub use follower::{Takeover, become_primary};
pub use replicator::Replicator;
pub use status::{ClusterStatus, Role, StatusView};

/// Why cluster mode cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach NATS at {url}: {why}")]
    Connect { url: String, why: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("the local log: {0}")]
    Log(String),
    #[error(
        "the local log diverges from the cluster's log: {0}; its records past the cluster's were never acknowledged. Move this data directory away and start again to rejoin as a standby"
    )]
    Diverged(String),
    #[error("the cluster's log is malformed at stream sequence {seq}: {why}")]
    Malformed { seq: u64, why: String },
}

impl ClusterError {
    pub(crate) fn js(e: impl std::fmt::Display) -> ClusterError {
        ClusterError::JetStream(e.to_string())
    }
}
