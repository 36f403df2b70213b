//! Function URLs: create and delete.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

/// A function URL as the admin API and the CLI show it.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct UrlInfo {
    pub function: String,
    pub auth: modelfn_control::UrlAuth,
    /// The version or alias it calls (none: `$LATEST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUrl {
    pub auth: modelfn_control::UrlAuth,
    #[serde(default)]
    pub qualifier: Option<String>,
}

/// `PUT /v1/functions/{name}/url` with `{"auth": "none" | "key", "qualifier": "prod"}`:
/// the function's URL, calling `$LATEST` or a version or an alias.
pub async fn create_url(
    State(state): State<AppState>,
    Path(function): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
    let req: NewUrl = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "send {{\"auth\": \"none\"}} or {{\"auth\": \"key\"}}: {e}"
        ))
    })?;
    state
        .control
        .create_url(&function, req.auth, req.qualifier.as_deref())
        .await?;
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let url = format!("http://{host}/urls/{function}/");
    Ok(Json(UrlInfo {
        function,
        auth: req.auth,
        qualifier: req.qualifier,
        url,
    })
    .into_response())
}

/// `DELETE /v1/functions/{name}/url`
pub async fn delete_url(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_url(&function).await?;
    Ok(StatusCode::NO_CONTENT)
}
