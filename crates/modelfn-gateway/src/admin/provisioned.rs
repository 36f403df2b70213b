//! Provisioned concurrency on a version or an alias: list, read, set (waiting until its
//! instances are up unless `"wait": false`) and delete.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// What `PUT /v1/functions/{name}/provisioned/{qualifier}` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetProvisioned {
    count: u32,
    #[serde(default = "yes")]
    wait: bool,
}

fn yes() -> bool {
    true
}

/// `GET /v1/functions/{name}/provisioned`
pub async fn list(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.control.provisioned(&function).await?).into_response())
}

/// `GET /v1/functions/{name}/provisioned/{qualifier}`
pub async fn get(
    State(state): State<AppState>,
    Path((function, qualifier)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(Json(
        state
            .control
            .provisioned_status(&function, &qualifier)
            .await?,
    )
    .into_response())
}

/// `PUT /v1/functions/{name}/provisioned/{qualifier}` with `{"count": N, "wait": true}`.
pub async fn set(
    State(state): State<AppState>,
    Path((function, qualifier)): Path<(String, String)>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
    let req: SetProvisioned = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("send {{\"count\": N}}: {e}")))?;
    let status = state
        .control
        .set_provisioned(&function, &qualifier, req.count, super::ADMIN, req.wait)
        .await?;
    Ok(Json(status).into_response())
}

/// `DELETE /v1/functions/{name}/provisioned/{qualifier}`
pub async fn delete(
    State(state): State<AppState>,
    Path((function, qualifier)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .control
        .delete_provisioned(&function, &qualifier)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
