//! Saved test events of a function.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::functions::name;

/// `PUT /v1/functions/{name}/events/{event}` with the event as the body.
pub async fn save_event(
    State(state): State<AppState>,
    Path((function, event)): Path<(String, String)>,
    body: axum::body::Body,
) -> Result<StatusCode, ApiError> {
    let body = crate::body::read(body, state.config.max_invoke_body_bytes).await?;
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
