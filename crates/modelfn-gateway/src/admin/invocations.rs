//! Invocation records and the cost report: a function's records by time, outcome and
//! request id (paged by sequence, to follow), and what recorded usage would cost on
//! Lambda beside an always-on server.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelfn_telemetry::cost::{self, Prices, Usage};
use modelfn_telemetry::{RecordQuery, RecordStore};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordParams {
    /// `10m`, `2h`, `1d`: records newer than that.
    pub since: Option<String>,
    /// Records numbered above this (to follow).
    pub after: Option<u64>,
    pub request_id: Option<String>,
    /// `success` or `error` (anything else that ended it).
    pub status: Option<String>,
    pub limit: Option<usize>,
    /// `all`: every node's records (a cluster's nodes each keep their own), each marked
    /// with its node; `this` (the default): this node's.
    pub nodes: Option<String>,
}

fn store(state: &AppState) -> Result<&Arc<RecordStore>, ApiError> {
    state.records.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "invocation records are off on this server (records = false)",
        )
    })
}

/// `status=success|error` as a filter on success.
pub(crate) fn success(status: Option<&str>) -> Result<Option<bool>, ApiError> {
    match status {
        None => Ok(None),
        Some("success") => Ok(Some(true)),
        Some("error") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "status={other:?}: ask for success or error"
        ))),
    }
}

/// `since=10m` as a time, Unix ms.
pub(crate) fn since_ms(since: Option<&str>) -> Result<Option<i64>, ApiError> {
    since
        .map(|s| {
            modelfn_core::duration::parse_duration(s)
                .map(|d| modelfn_telemetry::time::now_ms() - d.as_millis() as i64)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "since={s:?} is not a duration like 30s, 10m, 2h or 1d"
                    ))
                })
        })
        .transpose()
}

/// `GET /v1/functions/{name}/invocations?since=1h&status=error&request_id=ID&after=SEQ&limit=N`
pub async fn list(
    State(state): State<AppState>,
    Path(function): Path<String>,
    params: Result<Query<RecordParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    state.control.describe(&function).await?;
    let all_nodes = match p.nodes.as_deref() {
        None | Some("this") => false,
        Some("all") if p.after.is_some() => {
            return Err(ApiError::bad_request(
                "nodes=all cannot follow with after= (each node numbers its own records): ask each node, or use since=",
            ))
        }
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "nodes={other:?}: ask for all or this"
            )))
        }
    };
    // Checked here before any node is asked.
    let success = success(p.status.as_deref())?;
    let since_ms = since_ms(p.since.as_deref())?;
    let others = if all_nodes {
        Some(ask_others(&state, &function, &p).await)
    } else {
        None
    };
    let q = RecordQuery {
        function: Some(function),
        since_ms,
        after_seq: p.after,
        request_id: p.request_id,
        success,
        limit: p.limit,
    };
    let store = store(&state)?.clone();
    // Records are read from files: off the async workers.
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let records = tokio::task::spawn_blocking(move || store.query(&q))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string()))?;
    let Some(others) = others else {
        return Ok(Json(serde_json::json!({ "invocations": records })).into_response());
    };
    // Every node's records, each marked with its node, the newest `limit` oldest first.
    let this = state.control.cluster_status().await?.this_node;
    let mut all: Vec<serde_json::Value> = records
        .into_iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .map(|r| with_node(r, &this))
        .collect();
    let mut unanswered = Vec::new();
    for peer in others {
        match peer.answer {
            Ok(answer) => match answer.get("invocations").and_then(|v| v.as_array()) {
                Some(list) => all.extend(list.iter().map(|r| with_node(r.clone(), &peer.node))),
                None => unanswered.push(
                    serde_json::json!({"node": peer.node, "error": "no invocations in its answer"}),
                ),
            },
            Err(error) => unanswered.push(serde_json::json!({"node": peer.node, "error": error})),
        }
    }
    let start = |r: &serde_json::Value| r.get("start_ms").and_then(|v| v.as_i64()).unwrap_or(0);
    all.sort_by_key(start);
    let skip = all.len().saturating_sub(limit);
    all.drain(..skip);
    Ok(Json(serde_json::json!({ "invocations": all, "unanswered": unanswered })).into_response())
}

fn with_node(mut record: serde_json::Value, node: &str) -> serde_json::Value {
    if let Some(o) = record.as_object_mut() {
        o.insert("node".into(), node.into());
    }
    record
}

/// The same query, for this node's records only, sent to every other node.
async fn ask_others(
    state: &AppState,
    function: &str,
    p: &RecordParams,
) -> Vec<crate::admin::peers::PeerAnswer> {
    let enc = |s: &str| -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut query = vec!["nodes=this".to_string()];
    let pairs = [
        ("since", p.since.clone()),
        ("request_id", p.request_id.clone()),
        ("status", p.status.clone()),
        ("limit", p.limit.map(|l| l.to_string())),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            query.push(format!("{k}={}", enc(&v)));
        }
    }
    let path = format!(
        "/v1/functions/{}/invocations?{}",
        enc(function),
        query.join("&")
    );
    crate::admin::peers::ask_others(state, &path).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostParams {
    pub function: Option<String>,
    /// The span of recorded usage, `30d` by default.
    pub period: Option<String>,
    /// Project `per_day` invocations like the recorded ones over `days` days.
    pub per_day: Option<u64>,
    pub days: Option<u32>,
    pub per_million_invocations: Option<f64>,
    pub per_gb_second: Option<f64>,
    pub api_per_million: Option<f64>,
    pub server_per_month: Option<f64>,
}

/// `GET /v1/cost?function=F&period=30d&per_day=10000&days=22&server_per_month=66.4`
pub async fn cost(
    State(state): State<AppState>,
    params: Result<Query<CostParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(f) = &p.function {
        state.control.describe(f).await?;
    }
    let period = p.period.clone().unwrap_or_else(|| "30d".into());
    let span = modelfn_core::duration::parse_duration(&period).ok_or_else(|| {
        ApiError::bad_request(format!(
            "period={period:?} is not a duration like 1d or 30d"
        ))
    })?;
    let projection = match (p.per_day, p.days) {
        (Some(n), Some(d)) if d <= 366 && n <= 1_000_000_000 => Some((n, d)),
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request(
                "a projection needs both per_day (at most 1e9) and days (at most 366)",
            ))
        }
    };
    let defaults = Prices::default();
    let prices = Prices {
        per_million_invocations: p
            .per_million_invocations
            .unwrap_or(defaults.per_million_invocations),
        per_gb_second: p.per_gb_second.unwrap_or(defaults.per_gb_second),
        api_per_million: p.api_per_million.unwrap_or(defaults.api_per_million),
        server_per_month: p.server_per_month.unwrap_or(defaults.server_per_month),
    };
    let valid = |v: f64| v.is_finite() && v >= 0.0;
    if ![
        prices.per_million_invocations,
        prices.per_gb_second,
        prices.api_per_million,
        prices.server_per_month,
    ]
    .into_iter()
    .all(valid)
    {
        return Err(ApiError::bad_request("prices must be numbers of 0 or more"));
    }
    let q = RecordQuery {
        function: p.function.clone(),
        since_ms: Some(modelfn_telemetry::time::now_ms() - span.as_millis() as i64),
        ..RecordQuery::default()
    };
    let store = store(&state)?.clone();
    let usage: Usage = tokio::task::spawn_blocking(move || {
        let mut u = Usage::default();
        store.for_each(&q, &mut |r| u.add(r));
        u
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string()))?;
    let days = span.as_secs_f64() / 86_400.0;
    Ok(Json(cost::report(p.function, usage, days, projection, prices)).into_response())
}
