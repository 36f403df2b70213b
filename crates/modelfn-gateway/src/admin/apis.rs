//! APIs with stages and routes: apply (checked by compiling here; the reconciler
//! compiles what is stored into the node's table), list, delete.

use crate::error::{body_rejection, ApiError};
use crate::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;

/// `POST /v1/apis` with the definition file (TOML) as the body: creates or replaces the API.
pub async fn apply_api(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e, state.config.max_invoke_body_bytes))?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the API definition is not UTF-8"))?;
    let api = crate::apis::Api::compile(text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "InvalidApi", e.to_string()))?;
    for r in &api.routes {
        if state.scheduler.spec(&r.function).is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidApi",
                format!(
                    "route {} {}: function '{}' does not exist",
                    r.method, r.path, r.function
                ),
            ));
        }
    }
    state.control.save_api(&api.name, text).await?;
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    Ok((StatusCode::OK, Json(api_summary(&api, host))).into_response())
}

fn api_summary(api: &crate::apis::Api, host: &str) -> serde_json::Value {
    serde_json::json!({
        "name": api.name,
        "description": api.description,
        "stages": api.stages.iter().map(|s| serde_json::json!({"name": s.name, "url": format!("http://{host}/apis/{}/{}", api.name, s.name)})).collect::<Vec<_>>(),
        "routes": api.routes.iter().map(|r| serde_json::json!({
            "method": r.method, "path": r.path, "function": r.function,
            "integration": match r.integration { crate::apis::definition::Integration::Proxy { v2 } => if v2 { "proxy 2.0" } else { "proxy 1.0" }, _ => "mapping" },
            "auth": if r.require_key { "key" } else { "none" },
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/apis`
pub async fn list_apis(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080")
        .to_string();
    let list: Vec<serde_json::Value> = state
        .apis
        .all()
        .iter()
        .map(|a| api_summary(a, &host))
        .collect();
    Ok(Json(serde_json::json!({ "apis": list })).into_response())
}

/// `DELETE /v1/apis/{name}`
pub async fn delete_api(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_api(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
