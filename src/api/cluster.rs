//! `GET /v1/cluster`: this node's place in the cluster (cluster mode, `crate::cluster`).

use super::doc::NotFound;
use super::error::ApiError;
use super::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

/// This node's view of the cluster.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Cluster)]
pub struct ClusterJson {
    /// This node's `--node-id`.
    pub node_id: String,
    /// `starting`, `standby`, `primary` or `deposed`. Send writes to the node that says
    /// `primary`.
    #[schema(example = "primary")]
    pub role: &'static str,
    /// The lease holder's node id and `--advertise-url`, as last seen.
    pub primary_id: Option<String>,
    pub primary_url: Option<String>,
    /// The last sequence of the cluster's stream, as last seen.
    pub stream_sequence: u64,
    /// The stream sequence this node's log holds everything up to.
    pub applied_sequence: u64,
    /// This node's last log position copied from the stream (or appended, as primary).
    pub applied_lsn: u64,
    /// Stream messages not yet in this node's log.
    pub lag: u64,
    /// Why a deposed node stopped.
    pub reason: Option<String>,
}

/// `GET /v1/cluster`: role, primary, stream and applied positions, lag.
#[utoipa::path(get, path = "/v1/cluster", operation_id = "getCluster", tag = "operations",
    summary = "Cluster mode: this node's role, the primary, the replication lag",
    responses(
        (status = 200, description = "This node's view of the cluster", body = ClusterJson),
        (status = 404, response = inline(NotFound))))]
pub async fn get(State(state): State<AppState>) -> Response {
    let Some(status) = state.cluster() else {
        return ApiError::NotFound("cluster mode is off (no --cluster-url)".into()).into_response();
    };
    let v = status.view();
    axum::Json(ClusterJson {
        lag: v.lag(),
        node_id: v.node_id,
        role: v.role.as_str(),
        primary_id: v.primary_id,
        primary_url: v.primary_url,
        stream_sequence: v.stream_sequence,
        applied_sequence: v.applied_sequence,
        applied_lsn: v.applied_lsn,
        reason: v.reason,
    })
    .into_response()
}
