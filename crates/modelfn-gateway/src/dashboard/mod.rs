//! The web dashboard: one page served by the binary (`GET /dashboard`, assets embedded,
//! no CDN), which signs in with the admin token and reads the admin API: functions with
//! their versions, aliases and instances; per-minute charts made from the invocation
//! records (`GET /v1/dashboard/series`); recent invocations with their phases and logs;
//! the cost report.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelfn_core::Outcome;
use modelfn_telemetry::{InvocationRecord, RecordQuery};
use serde::{Deserialize, Serialize};

const PAGE: &str = include_str!("index.html");

/// `GET /dashboard`: the page (it holds no data; the data needs the token).
pub async fn page() -> Response {
    let mut r = PAGE.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Its own inline script and style, and requests to this server only.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    pub function: String,
    /// How many minutes back, 30 by default, at most a day.
    pub minutes: Option<u32>,
}

/// One minute of a function's invocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// The minute's start, Unix ms.
    pub at_ms: i64,
    pub invocations: u64,
    /// Ended by the function or the platform (not the caller's bad input, not throttling).
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    /// Of the invocations that ran, from arrival to answer.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The most invocations running at once within the minute.
    pub concurrency: u64,
}

/// Per-minute points from records, oldest first, one for every minute of the window.
pub fn minutes(records: &[InvocationRecord], from_ms: i64, count: usize) -> Vec<Minute> {
    let mut points: Vec<Minute> = (0..count)
        .map(|i| Minute {
            at_ms: from_ms + i as i64 * 60_000,
            ..Minute::default()
        })
        .collect();
    let mut took: Vec<Vec<f64>> = vec![Vec::new(); count];
    let mut spans: Vec<Vec<(i64, i64)>> = vec![Vec::new(); count];
    for r in records {
        let Ok(i) = usize::try_from((r.start_ms - from_ms).div_euclid(60_000)) else {
            continue;
        };
        let Some(p) = points.get_mut(i) else {
            continue;
        };
        p.invocations += 1;
        match r.outcome {
            Outcome::Throttled => p.throttles += 1,
            Outcome::FunctionError
            | Outcome::Timeout
            | Outcome::InitError
            | Outcome::PlatformError => p.errors += 1,
            Outcome::Success | Outcome::BadInput => {}
        }
        p.cold_starts += u64::from(r.cold);
        if r.billed_ms > 0 {
            let total = r.queue_wait_ms + r.init_ms.unwrap_or(0.0) + r.duration_ms;
            took[i].push(total);
            spans[i].push((r.start_ms, r.start_ms + total.ceil() as i64));
        }
    }
    for ((p, mut t), s) in points.iter_mut().zip(took).zip(spans) {
        t.sort_by(f64::total_cmp);
        let q = |f: f64| {
            t.get(((t.len() as f64 * f).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0.0)
        };
        p.p50_ms = q(0.5);
        p.p99_ms = q(0.99);
        p.concurrency = most_at_once(&s);
    }
    points
}

/// The most intervals open at one instant.
fn most_at_once(spans: &[(i64, i64)]) -> u64 {
    let mut edges: Vec<(i64, i8)> = spans
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    // An interval ending when another starts does not overlap it.
    edges.sort_unstable();
    let (mut open, mut most) = (0i64, 0i64);
    for (_, d) in edges {
        open += i64::from(d);
        most = most.max(open);
    }
    most.max(0) as u64
}

/// `GET /v1/dashboard/series?function=F&minutes=30`
pub async fn series(
    State(state): State<AppState>,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    state.control.describe(&p.function).await?;
    let count = p.minutes.unwrap_or(30).clamp(1, 1440) as usize;
    let now = modelfn_telemetry::time::now_ms();
    let from_ms = (now.div_euclid(60_000) - count as i64 + 1) * 60_000;
    let Some(store) = state.records.clone() else {
        return Ok(
            Json(serde_json::json!({ "points": minutes(&[], from_ms, count) })).into_response(),
        );
    };
    let q = RecordQuery {
        function: Some(p.function),
        since_ms: Some(from_ms),
        ..RecordQuery::default()
    };
    let records = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        store.for_each(&q, &mut |r| all.push(r.clone()));
        all
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string()))?;
    Ok(Json(serde_json::json!({ "points": minutes(&records, from_ms, count) })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(start_ms: i64, ms: f64, outcome: Outcome, cold: bool) -> InvocationRecord {
        InvocationRecord {
            seq: 0,
            request_id: "r".into(),
            function: "f".into(),
            version: 1,
            door: "native".into(),
            alias: None,
            key_id: None,
            start_ms,
            queue_wait_ms: 0.0,
            init_ms: None,
            duration_ms: ms,
            billed_ms: if outcome == Outcome::Throttled {
                0
            } else {
                ms.ceil() as u64
            },
            memory_mb: 128,
            max_memory_used_mb: None,
            cold,
            batch_rows: None,
            outcome,
            error: None,
        }
    }

    #[test]
    fn minutes_count_what_each_minute_held() {
        // A whole minute.
        let t0 = 1_764_300_000_000;
        let records = [
            rec(t0 + 10, 100.0, Outcome::Success, true),
            rec(t0 + 20, 10.0, Outcome::Success, false),
            rec(t0 + 50, 10.0, Outcome::FunctionError, false),
            rec(t0 + 60_000, 5.0, Outcome::Throttled, false),
            rec(t0 + 999_999_999, 5.0, Outcome::Success, false),
        ];
        let m = minutes(&records, t0, 3);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].invocations, m[0].errors, m[0].cold_starts), (3, 1, 1));
        assert_eq!((m[0].p50_ms, m[0].p99_ms), (10.0, 100.0));
        // The first runs through both others, which do not meet.
        assert_eq!(m[0].concurrency, 2);
        assert_eq!((m[1].invocations, m[1].throttles, m[1].p99_ms), (1, 1, 0.0));
        assert_eq!(
            m[2],
            Minute {
                at_ms: t0 + 120_000,
                ..Minute::default()
            }
        );
    }
}
