//! Fan-out: `POST /v1/functions/{name}/map` runs one invocation per line of a JSON Lines
//! body, at most `concurrency` at once, tries again what failed, and streams one JSON line
//! per item back, in the input's order, as the items finish (`modelfn map` reads it).
//!
//! The version is resolved once: every item of a map runs on the same version.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures::StreamExt;
use modelfn_core::{Fault, FunctionCaller, Invocation, InvokeError, Origin};
use modelfn_scheduler::Resolved;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEFAULT_CONCURRENCY: usize = 16;
pub const MAX_CONCURRENCY: usize = 1000;
pub const DEFAULT_RETRIES: u32 = 2;
pub const MAX_RETRIES: u32 = 10;
/// A throttled item waits and tries again (without counting an attempt) this long at most.
const THROTTLED_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapParams {
    /// Invocations at once, at most (16 by default, at most 1000).
    concurrency: Option<usize>,
    /// Further attempts for an item whose invocation failed (2 by default, at most 10).
    retries: Option<u32>,
}

/// `POST /v1/functions/{name}/map?concurrency=64&retries=2`: the body is JSON Lines, one
/// event per line. Answers `application/x-ndjson`: per item
/// `{"index", "request_id", "attempts", "ok": true, "result"}` or
/// `{..., "ok": false, "error": {"type", "message"}}`.
pub async fn map(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Option<Extension<Arc<FunctionCaller>>>,
    params: Result<Query<MapParams>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let concurrency = params.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        return Err(ApiError::bad_request(format!(
            "concurrency = {concurrency} is not between 1 and {MAX_CONCURRENCY}"
        )));
    }
    let retries = params.retries.unwrap_or(DEFAULT_RETRIES);
    if retries > MAX_RETRIES {
        return Err(ApiError::bad_request(format!(
            "retries = {retries} is more than {MAX_RETRIES}"
        )));
    }
    let (parts, body) = request.into_parts();
    let target = crate::front::function_ref(name);
    crate::door_auth::admit(&state, &parts.headers, caller.is_some(), Some(&target.name)).await?;
    let resolved = crate::front::resolve(&state, &target)
        .map_err(|(why, message)| crate::front::not_found(&target, &why, message))?;
    let trace = crate::request::trace(&parts.headers);
    let limit = state.config.max_map_input_bytes;
    let body = crate::body::read(body, limit).await?;
    let items = items(&body, state.config.max_invoke_body_bytes)?;
    let origin = Origin {
        door: "map",
        ..crate::request::origin()
    };
    let count = items.len();
    let job = Arc::new(Job {
        state: state.clone(),
        target: resolved,
        origin,
        trace,
        retries,
    });
    let lines = futures::stream::iter(items.into_iter().enumerate())
        .map(move |(index, item)| {
            let job = job.clone();
            async move { job.run(index, item).await }
        })
        .buffered(concurrency)
        .map(Ok::<Bytes, std::convert::Infallible>);
    let mut resp = Response::new(Body::from_stream(lines));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert("x-modelfn-map-items", HeaderValue::from(count));
    Ok((StatusCode::OK, resp).into_response())
}

/// The body's items: one JSON value per non-blank line, each at most `max_item` bytes.
fn items(body: &Bytes, max_item: usize) -> Result<Vec<Bytes>, ApiError> {
    let mut items = Vec::new();
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if line.len() > max_item {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLarge",
                format!(
                    "line {} is {} bytes, more than an invocation's limit of {max_item}",
                    n + 1,
                    line.len()
                ),
            ));
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            let why = e.to_string();
            let why = why.split(" at line ").next().unwrap_or_default();
            return Err(ApiError::bad_request(format!(
                "line {} is not JSON: {why} at column {} (the body is JSON Lines: one event per line)",
                n + 1,
                e.column()
            )));
        }
        items.push(body.slice_ref(line));
    }
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "the body holds no items (JSON Lines: one event per line)",
        ));
    }
    Ok(items)
}

/// What every item of one map shares.
struct Job {
    state: AppState,
    target: Resolved,
    origin: Origin,
    trace: Option<String>,
    retries: u32,
}

impl Job {
    /// Runs item `index` until it succeeds, fails for good, or its retries are spent;
    /// answers its line.
    async fn run(&self, index: usize, item: Bytes) -> Bytes {
        let mut attempts = 0u32;
        let throttled_until = Instant::now() + THROTTLED_FOR;
        loop {
            let id = crate::request::new_request_id();
            let mut inv = Invocation::new(id.clone(), item.clone(), Some("application/json"))
                .with_trace(self.trace.clone());
            inv.origin = self.origin.clone();
            attempts += 1;
            let result = self
                .state
                .scheduler
                .invoke_resolved(&self.target, inv)
                .await;
            let e = match result {
                Ok((out, _)) => return line(index, &id, attempts, Ok(&out.body)),
                Err(e) => e,
            };
            let wait = if let (InvokeError::Throttled { retry_after, .. }, true) =
                (&e, Instant::now() < throttled_until)
            {
                // Not run: waits without spending an attempt, as long as it may.
                attempts -= 1;
                (*retry_after).clamp(Duration::from_millis(10), Duration::from_secs(1))
            } else if e.fault() == Fault::Client || attempts > self.retries {
                return line(index, &id, attempts, Err(&e));
            } else {
                Duration::from_millis(100).saturating_mul(1 << (attempts - 1).min(6))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One item's answer as a line of JSON.
fn line(index: usize, id: &str, attempts: u32, r: Result<&Bytes, &InvokeError>) -> Bytes {
    let mut v = json!({ "index": index, "request_id": id, "attempts": attempts });
    match r {
        Ok(body) => {
            v["ok"] = Value::Bool(true);
            v["result"] = serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(body)));
        }
        Err(e) => {
            v["ok"] = Value::Bool(false);
            v["error"] = match e.function_error() {
                Some(fe) => json!({ "type": fe.error_type, "message": fe.error_message }),
                None => json!({ "type": e.kind(), "message": e.to_string() }),
            };
        }
    }
    let mut out = serde_json::to_vec(&v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_lines_of_json_and_bad_ones_are_named() {
        let body = Bytes::from_static(b"{\"a\": 1}\n\n  [2]  \r\n3\n");
        let got = items(&body, 100).unwrap();
        assert_eq!(got, vec!["{\"a\": 1}", "[2]", "3"]);
        let e = items(&Bytes::from_static(b"1\n{nope\n"), 100).unwrap_err();
        assert!(e.message.contains("line 2 is not JSON"), "{}", e.message);
        let e = items(&Bytes::from_static(b"[1,2,3,4]\n"), 4).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(items(&Bytes::from_static(b"\n \n"), 4).is_err());
    }
}
