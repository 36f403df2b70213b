//! Access keys and their usage.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// May change what serves through the AWS management calls.
    #[serde(default)]
    pub manage: bool,
}

/// `POST /v1/keys` with `{"name": "...", "manage": false}`: an access key; the secret is shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
    let req: NewKey = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("send {{\"name\": \"...\"}}: {e}")))?;
    let key = state.control.create_key(&req.name, req.manage).await?;
    Ok((StatusCode::CREATED, Json(key)).into_response())
}

/// `GET /v1/keys`: every key, without secrets.
pub async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "keys": state.control.list_keys().await? })).into_response())
}

/// `DELETE /v1/keys/{id}`
pub async fn delete_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/keys/{id}/usage`: requests per day made with the key (since the server started).
pub async fn key_usage(State(state): State<AppState>, Path(id): Path<String>) -> Json<KeyUsage> {
    Json(KeyUsage {
        days: state.control.key_usage(&id),
        access_key_id: id,
    })
}

/// Requests per day made with a key (since the server started).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyUsage {
    pub access_key_id: String,
    pub days: std::collections::BTreeMap<String, u64>,
}
