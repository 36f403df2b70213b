//! The cluster's nodes.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use modelfn_control::ClusterStatus;

/// `GET /v1/cluster`: every node the store knows (up, or lost when it has not recorded
/// itself for 10 s), the generation each has applied, the calls each is running.
pub async fn status(State(state): State<AppState>) -> Result<Json<ClusterStatus>, ApiError> {
    Ok(Json(state.control.cluster_status().await?))
}
