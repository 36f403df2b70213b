//! Kept traces: the newest (of a function, or all) and one by request id, with their
//! spans, for the dashboard's waterfall and for tools.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use modelfn_telemetry::{TraceView, Tracer};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceParams {
    pub function: Option<String>,
    /// At most this many, newest first (default 50, at most 1000).
    pub limit: Option<usize>,
}

fn tracer(state: &AppState) -> Result<&Arc<Tracer>, ApiError> {
    state.tracer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "traces are off on this server (traces = false)",
        )
    })
}

/// `GET /v1/traces?function=NAME&limit=N`
pub async fn list(
    State(state): State<AppState>,
    params: Result<Query<TraceParams>, QueryRejection>,
) -> Result<Json<Vec<TraceView>>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = p.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(tracer(&state)?.recent(p.function.as_deref(), limit)))
}

/// `GET /v1/traces/{request_id}`
pub async fn show(
    State(state): State<AppState>,
    Path(request_id): Path<String>,
) -> Result<Json<TraceView>, ApiError> {
    tracer(&state)?.find(&request_id).map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "no trace of request {request_id} is kept: it was not sampled (every cold start and error, a few each second and a share of the rest are), or newer ones replaced it"
            ),
        )
    })
}
