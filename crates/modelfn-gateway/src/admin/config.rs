//! A function's scaling settings, applied at once.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigParams {
    /// Replace every stored setting instead of merging the given ones.
    #[serde(default)]
    pub replace: bool,
}

/// `PUT /v1/functions/{name}/config` with scaling settings as JSON:
/// `{"reserved_concurrency": 10, "provisioned_concurrency": 1, "keep_alive": "5m",
/// "max_batch": 32, "max_delay": "2ms"}`. Applied at once, without a restart.
pub async fn configure(
    State(state): State<AppState>,
    Path(function): Path<String>,
    params: Result<Query<ConfigParams>, axum::extract::rejection::QueryRejection>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
    let patch: modelfn_core::ScalingConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the scaling settings are not valid: {e}")))?;
    Ok(Json(
        state
            .control
            .configure(&function, patch, params.replace)
            .await?,
    )
    .into_response())
}
