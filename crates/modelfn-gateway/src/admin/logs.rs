//! A function's log lines, by time, request id, text or sequence.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelfn_telemetry::LogQuery;
use serde::Deserialize;

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
