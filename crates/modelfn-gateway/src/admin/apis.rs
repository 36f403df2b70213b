//! APIs with stages and routes: apply (checked by compiling here; the reconciler
//! compiles what is stored into the node's table), list, delete.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `POST /v1/apis` with the definition file (TOML) as the body: creates or replaces the API.
pub async fn apply_api(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the API definition is not UTF-8"))?;
    let api = crate::apis::Api::compile(text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "InvalidApi", e.to_string()))?;
    for r in &api.routes {
        // The function, and the version or alias a route names, must serve now.
        if let Err((why, message)) = crate::front::resolve(&state, &r.target) {
            let message = match why {
                modelfn_scheduler::Unresolved::NoFunction => {
                    format!("function '{}' does not exist", r.target.name)
                }
                modelfn_scheduler::Unresolved::NoVersion { .. }
                | modelfn_scheduler::Unresolved::NoAlias => message,
            };
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidApi",
                format!("route {} {}: {message}", r.method, r.path),
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

/// An API as the admin API and the CLI show it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApiSummary {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub stages: Vec<StageSummary>,
    pub routes: Vec<RouteSummary>,
}

/// A stage and its URL.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageSummary {
    pub name: String,
    pub url: String,
}

/// A route: what it calls, how and who may.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RouteSummary {
    pub method: String,
    pub path: String,
    pub function: String,
    /// `proxy 1.0`, `proxy 2.0` or `mapping`.
    pub integration: String,
    /// `key` or `none`.
    pub auth: String,
}

/// The APIs `GET /v1/apis` lists.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ApiList {
    pub apis: Vec<ApiSummary>,
}

fn api_summary(api: &crate::apis::Api, host: &str) -> ApiSummary {
    use crate::apis::definition::Integration;
    ApiSummary {
        name: api.name.clone(),
        description: api.description.clone(),
        stages: api
            .stages
            .iter()
            .map(|s| StageSummary {
                name: s.name.clone(),
                url: format!("http://{host}/apis/{}/{}", api.name, s.name),
            })
            .collect(),
        routes: api
            .routes
            .iter()
            .map(|r| RouteSummary {
                method: r.method.clone(),
                path: r.path.clone(),
                function: r.function.clone(),
                integration: match r.integration {
                    Integration::Proxy { v2: true } => "proxy 2.0",
                    Integration::Proxy { v2: false } => "proxy 1.0",
                    Integration::Mapping { .. } => "mapping",
                }
                .into(),
                auth: if r.require_key { "key" } else { "none" }.into(),
            })
            .collect(),
    }
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
    let apis = state
        .apis
        .all()
        .iter()
        .map(|a| api_summary(a, &host))
        .collect();
    Ok(Json(ApiList { apis }).into_response())
}

/// `DELETE /v1/apis/{name}`
pub async fn delete_api(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_api(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
