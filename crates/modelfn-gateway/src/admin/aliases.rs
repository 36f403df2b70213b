//! A function's versions and aliases: list versions; set, list and delete aliases; an
//! alias's shadow report.

use super::ADMIN;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `GET /v1/functions/{name}/versions`
pub async fn list_versions(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.control.versions(&function).await?).into_response())
}

/// `DELETE /v1/functions/{name}/versions/{version}`
pub async fn delete_version(
    State(state): State<AppState>,
    Path((function, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let version: u64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{version:?} is not a version number")))?;
    state.control.delete_version(&function, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/functions/{name}/aliases`: the aliases and the history of their moves.
pub async fn list_aliases(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.control.aliases(&function).await?).into_response())
}

/// `PUT /v1/functions/{name}/aliases/{alias}` with
/// `{"routing": {"3": 90, "4": 10}, "sticky": "header:x-user", "shadow": {"version": 5,
/// "percent": 10}, "description": "..."}`.
pub async fn set_alias(
    State(state): State<AppState>,
    Path((function, alias)): Path<(String, String)>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
    let spec: modelfn_control::AliasSpec = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "send {{\"routing\": {{\"VERSION\": WEIGHT, ...}}, \"sticky\": \"header:NAME\" | \"json:FIELD\"}}: {e}"
        ))
    })?;
    let record = state
        .control
        .set_alias(&function, &alias, spec, ADMIN)
        .await?;
    Ok(Json(record).into_response())
}

/// `GET /v1/functions/{name}/aliases/{alias}/shadow`: how the alias's shadow challenger
/// agrees with what it answers.
pub async fn shadow_report(
    State(state): State<AppState>,
    Path((function, alias)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(Json(state.control.shadow_report(&function, &alias).await?).into_response())
}

/// `DELETE /v1/functions/{name}/aliases/{alias}`
pub async fn delete_alias(
    State(state): State<AppState>,
    Path((function, alias)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_alias(&function, &alias, ADMIN).await?;
    Ok(StatusCode::NO_CONTENT)
}
