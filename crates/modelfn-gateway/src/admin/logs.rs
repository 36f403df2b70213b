//! A function's log lines, by time, request id, text, outcome or sequence. A model writes
//! no lines: its START/END/REPORT lines are made from its invocation records. With
//! `status`, only the lines of invocations that ended that way (found in the records).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelfn_telemetry::lambda_lines::record_lines;
use modelfn_telemetry::{LogQuery, LogRecord, RecordQuery};
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
    /// `success` or `error`.
    pub status: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /v1/functions/{name}/logs?since=10m&after=SEQ&request_id=ID&contains=TEXT&status=error&limit=N`
pub async fn logs(
    State(state): State<AppState>,
    Path(function): Path<String>,
    params: Result<Query<LogParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    state.control.describe(&function).await?;
    let since_ms = super::invocations::since_ms(p.since.as_deref())?;
    let success = super::invocations::success(p.status.as_deref())?;
    let model = state
        .scheduler
        .spec(&function)
        .is_some_and(|s| s.manifest.runtime == modelfn_core::RuntimeKind::Onnx);
    let records = |after_seq, limit| {
        let store = state.records.clone();
        let q = RecordQuery {
            function: Some(function.clone()),
            since_ms,
            after_seq,
            request_id: p.request_id.clone(),
            success,
            limit,
        };
        async move {
            let Some(store) = store else {
                return Ok(Vec::new());
            };
            tokio::task::spawn_blocking(move || store.query(&q))
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string())
                })
        }
    };
    let lines: Vec<LogRecord> = if model {
        // A model's lines are its records'.
        let contains = p.contains.as_deref();
        records(p.after, p.limit)
            .await?
            .iter()
            .flat_map(record_lines)
            .filter(|l| contains.is_none_or(|t| l.message.contains(t)))
            .collect()
    } else {
        let q = LogQuery {
            since_ms,
            after_seq: p.after,
            request_id: p.request_id.clone(),
            contains: p.contains.clone(),
            limit: if success.is_some() {
                Some(100_000)
            } else {
                p.limit
            },
        };
        let mut lines = state.logs.query(&function, &q);
        if success.is_some() {
            let ids: std::collections::HashSet<String> = records(None, Some(100_000))
                .await?
                .into_iter()
                .map(|r| r.request_id)
                .collect();
            lines.retain(|l| l.request_id.as_ref().is_some_and(|id| ids.contains(id)));
            let skip = lines.len().saturating_sub(p.limit.unwrap_or(1000));
            lines.drain(..skip);
        }
        lines
    };
    Ok(Json(serde_json::json!({ "lines": lines })).into_response())
}
