//! [`ClusterStatus`]: this node's view of the cluster, shared by the cluster tasks (writers)
//! and `GET /v1/cluster` and the metrics (readers).

use parking_lot::RwLock;
use serde::Serialize;
use std::sync::Arc;

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Connecting, catching up or taking over: not serving.
    Starting,
    /// Copying the primary's log; writes are answered 503 not_leader.
    Standby,
    /// Holds the lease and acknowledges writes.
    Primary,
    /// Was primary and was replaced (or lost the cluster's log): acknowledges nothing more
    /// until it restarts (as a standby).
    Deposed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Standby => "standby",
            Role::Primary => "primary",
            Role::Deposed => "deposed",
        }
    }
}

/// What `GET /v1/cluster` reports.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    pub node_id: String,
    pub role: Role,
    /// The node holding the lease, as last seen.
    pub primary_id: Option<String>,
    pub primary_url: Option<String>,
    /// The stream's last sequence, as last seen.
    pub stream_sequence: u64,
    /// The stream sequence this node's log holds everything up to.
    pub applied_sequence: u64,
    /// This node's log end (last LSN written locally from the stream or appended as primary).
    pub applied_lsn: u64,
    /// A deposed node's reason.
    pub reason: Option<String>,
}

impl StatusView {
    /// Stream messages not yet in this node's log.
    pub fn lag(&self) -> u64 {
        self.stream_sequence.saturating_sub(self.applied_sequence)
    }
}

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct ClusterStatus(Arc<RwLock<StatusView>>);

impl ClusterStatus {
    pub fn new(node_id: &str) -> ClusterStatus {
        ClusterStatus(Arc::new(RwLock::new(StatusView {
            node_id: node_id.into(),
            role: Role::Starting,
            primary_id: None,
            primary_url: None,
            stream_sequence: 0,
            applied_sequence: 0,
            applied_lsn: 0,
            reason: None,
        })))
    }

    pub fn role(&self) -> Role {
        self.0.read().role
    }

    pub fn view(&self) -> StatusView {
        self.0.read().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut StatusView)) {
        f(&mut self.0.write());
    }

    /// Marks the node deposed (once; the first reason stays).
    pub fn depose(&self, reason: &str) {
        let mut v = self.0.write();
        if v.role != Role::Deposed {
            tracing::error!(
                reason,
                "deposed: this node acknowledges nothing more; restart it to rejoin as a standby"
            );
            v.role = Role::Deposed;
            v.reason = Some(reason.into());
        }
    }
}
