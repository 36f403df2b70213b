//! Admin routes around functions: layers, logs and saved test events.

use crate::admin::require_package;
use crate::error::{body_rejection, ApiError};
use crate::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use modelfn_core::FunctionName;
use modelfn_telemetry::LogQuery;
use serde::Deserialize;

fn name(s: &str) -> Result<FunctionName, ApiError> {
    FunctionName::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))
}

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
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let layer = name(&layer)?;
    require_package(&headers)?;
    let body = body.map_err(|e| body_rejection(e, state.config.max_layer_bytes))?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; upload the layer directory as a tar.gz",
        ));
    }
    let info = state
        .control
        .publish_layer(&layer, body.to_vec(), &params.description)
        .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `GET /v1/layers`
pub async fn list_layers(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "layers": state.control.list_layers().await? })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// `10m`, `2h`, `30s`, `1d`: lines newer than that.
    pub since: Option<String>,
    /// Lines after this sequence number (to follow).
    pub after: Option<u64>,
    pub request_id: Option<String>,
    pub contains: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /v1/functions/{name}/logs?since=10m&after=SEQ&request_id=ID&contains=TEXT&limit=N`
pub async fn logs(
    State(state): State<AppState>,
    Path(function): Path<String>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    state.control.describe(&function).await?;
    let since_ms = match &p.since {
        Some(s) => Some(
            modelfn_telemetry::time::now_ms()
                - modelfn_core::duration::parse_duration(s)
                    .map(|d| d.as_millis() as i64)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "since={s:?} is not a duration like 30s, 10m, 2h or 1d"
                        ))
                    })?,
        ),
        None => None,
    };
    let q = LogQuery {
        since_ms,
        after_seq: p.after,
        request_id: p.request_id,
        contains: p.contains,
        limit: p.limit,
    };
    Ok(Json(serde_json::json!({ "lines": state.logs.query(&function, &q) })).into_response())
}

/// `PUT /v1/functions/{name}/events/{event}` with the event as the body.
pub async fn save_event(
    State(state): State<AppState>,
    Path((function, event)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|e| body_rejection(e, state.config.max_invoke_body_bytes))?;
    state
        .control
        .save_event(&function, &name(&event)?, &body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/functions/{name}/events/{event}`: the saved event.
pub async fn get_event(
    State(state): State<AppState>,
    Path((function, event)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let body = state.control.event(&function, &event).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// `GET /v1/functions/{name}/events`: the names of the saved events.
pub async fn list_events(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<Response, ApiError> {
    Ok(
        Json(serde_json::json!({ "events": state.control.list_events(&function).await? }))
            .into_response(),
    )
}

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
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body = body.map_err(|e| body_rejection(e, state.config.max_invoke_body_bytes))?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
}

/// `POST /v1/keys` with `{"name": "..."}`: an access key; the secret is shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e, state.config.max_invoke_body_bytes))?;
    let req: NewKey = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("send {{\"name\": \"...\"}}: {e}")))?;
    let key = state.control.create_key(&req.name).await?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUrl {
    pub auth: modelfn_control::UrlAuth,
}

/// `PUT /v1/functions/{name}/url` with `{"auth": "none" | "key"}`: the function's URL.
pub async fn create_url(
    State(state): State<AppState>,
    Path(function): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e, state.config.max_invoke_body_bytes))?;
    let req: NewUrl = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "send {{\"auth\": \"none\"}} or {{\"auth\": \"key\"}}: {e}"
        ))
    })?;
    state.control.create_url(&function, req.auth).await?;
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    Ok(Json(serde_json::json!({"function": function, "auth": req.auth, "url": format!("http://{host}/urls/{function}/")})).into_response())
}

/// `DELETE /v1/functions/{name}/url`
pub async fn delete_url(
    State(state): State<AppState>,
    Path(function): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_url(&function).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Compiles stored API definitions into the gateway's table (at start-up).
pub async fn load_apis(state: &AppState) -> Result<usize, modelfn_control::ControlError> {
    let mut n = 0;
    for (name, text) in state.control.apis().await? {
        match crate::apis::Api::compile(&text) {
            Ok(api) => {
                state
                    .apis
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name, std::sync::Arc::new(api));
                n += 1;
            }
            Err(e) => tracing::error!(api = %name, error = %e, "a stored API does not compile"),
        }
    }
    Ok(n)
}

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
        if state.control.scheduler().spec(&r.function).is_none() {
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
    let summary = api_summary(&api, host);
    state
        .apis
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(api.name.clone(), std::sync::Arc::new(api));
    Ok((StatusCode::OK, Json(summary)).into_response())
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
    let apis = state.apis.read().unwrap_or_else(|p| p.into_inner());
    let mut list: Vec<serde_json::Value> = apis.values().map(|a| api_summary(a, &host)).collect();
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(serde_json::json!({ "apis": list })).into_response())
}

/// `DELETE /v1/apis/{name}`
pub async fn delete_api(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_api(&name).await?;
    state
        .apis
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&name);
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/plans/{name}`: a usage plan,
/// `{"rate": 10, "burst": 20, "quota": 1000, "period": "day", "targets": ["calc/PRD", "url:digits"], "keys": ["MFN..."]}`.
pub async fn save_plan(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| body_rejection(e, state.config.max_invoke_body_bytes))?;
    let mut plan: modelfn_control::plans::UsagePlan = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the usage plan is not valid: {e}")))?;
    plan.name = name;
    Ok(Json(state.control.save_plan(plan).await?).into_response())
}

/// `GET /v1/plans`
pub async fn list_plans(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "plans": state.control.plans() }))
}

/// `DELETE /v1/plans/{name}`
pub async fn delete_plan(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_plan(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/keys/{id}/usage`: requests per day made with the key (since the server started).
pub async fn key_usage(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "access_key_id": id, "days": state.control.key_usage(&id) }))
}
