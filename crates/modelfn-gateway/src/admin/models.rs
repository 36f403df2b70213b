//! The model store: put a revision (the model file as the body), list, roll back.

use super::ADMIN;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackParams {
    /// The revision to make current (default: the one before the current).
    #[serde(default)]
    pub to: Option<u64>,
}

/// `PUT /v1/store/models/{name}` with the model file as the body: a new revision, made current
/// once every function following the model starts with it and answers its test event.
pub async fn put_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<PutParams>, QueryRejection>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body = crate::body::read(body, state.config.max_layer_bytes).await?;
    let moved = state
        .control
        .put_model(&name, body, &params.description, ADMIN)
        .await?;
    let status = if moved.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(moved)).into_response())
}

/// `POST /v1/store/models/{name}/rollback[?to=REVISION]`
pub async fn rollback_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<RollbackParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let moved = state
        .control
        .rollback_model(&name, params.to, ADMIN)
        .await?;
    Ok(Json(moved).into_response())
}

/// `GET /v1/store/models`
pub async fn list_models(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.control.models(None).await?).into_response())
}

/// `GET /v1/store/models/{name}`
pub async fn get_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let mut all = state.control.models(Some(&name)).await?;
    Ok(Json(all.pop()).into_response())
}
