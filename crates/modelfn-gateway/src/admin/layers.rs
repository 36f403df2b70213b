//! Layers: publish (a tar.gz of a prepared directory) and list.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::functions::{name, require_package};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerParams {
    #[serde(default)]
    pub description: String,
}

/// `POST /v1/layers/{name}` with the layer directory as a tar.gz: a new layer version.
pub async fn publish_layer(
    State(state): State<AppState>,
    Path(layer): Path<String>,
    params: Result<Query<LayerParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let layer = name(&layer)?;
    require_package(&headers)?;
    let body = crate::body::read(body, state.config.max_layer_bytes).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; upload the layer directory as a tar.gz",
        ));
    }
    let info = state
        .control
        .publish_layer(&layer, body, &params.description)
        .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `GET /v1/layers`
pub async fn list_layers(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "layers": state.control.list_layers().await? })).into_response())
}
