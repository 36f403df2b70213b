//! Functions: deploy (a tar.gz upload), list, describe and delete.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelfn_core::FunctionName;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployParams {
    /// Deploy under this name instead of the manifest's.
    pub name: Option<String>,
    /// `false`: record and serve the version without starting it first.
    pub validate: Option<bool>,
}

const PACKAGE_TYPES: &[&str] = &[
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-compressed-tar",
    "application/octet-stream",
];

/// Refuses uploads whose content type is not one a tar.gz is sent as.
pub fn require_package(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let ct = modelfn_core::invocation::normalize_media_type(ct);
        if !PACKAGE_TYPES.contains(&ct.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!("a package is uploaded as application/gzip (a tar.gz), not {ct}"),
            ));
        }
    }
    Ok(())
}

/// `POST /v1/functions[?name=NAME]` with a tar.gz package as the body.
pub async fn deploy(
    State(state): State<AppState>,
    params: Result<Query<DeployParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    require_package(&headers)?;
    let body = crate::body::read(body, state.config.max_package_bytes).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; upload the function as a tar.gz (`modelfn deploy DIR` does it for you)",
        ));
    }
    let name = params
        .name
        .map(|n| FunctionName::parse(&n))
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let outcome = state
        .control
        .deploy(body, name, params.validate.unwrap_or(true))
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)).into_response())
}

/// `GET /v1/functions`
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let functions = state.control.list().await?;
    Ok(Json(serde_json::json!({ "functions": functions })).into_response())
}

/// `GET /v1/functions/{name}`
pub async fn describe(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.control.detail(&name).await?).into_response())
}

/// `DELETE /v1/functions/{name}`
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete(&name).await?;
    let dropped = state.events.drop_function(&name).await;
    if dropped > 0 {
        tracing::info!(function = %name, dropped, "dropped the deleted function's queued events");
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn name(s: &str) -> Result<FunctionName, ApiError> {
    FunctionName::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))
}
