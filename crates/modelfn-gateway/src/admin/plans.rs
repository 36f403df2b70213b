//! Usage plans.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `PUT /v1/plans/{name}`: a usage plan,
/// `{"rate": 10, "burst": 20, "quota": 1000, "period": "day", "targets": ["calc/PRD", "url:digits"], "keys": ["MFN..."]}`.
pub async fn save_plan(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
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
