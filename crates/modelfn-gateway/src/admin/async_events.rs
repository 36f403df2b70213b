//! Asynchronous invocations over the native API: `POST /v1/functions/{name}/invoke-async`
//! (202 once the event is stored), an event's status and answer by request id, each
//! function's queue, and the dead-letter store (list, show, redrive).

use crate::error::ApiError;
use crate::events::Refused;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use modelfn_core::FunctionCaller;
use modelfn_queue::{DeadQuery, EventStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// How long an event's body may take to arrive once its room is taken.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `POST /v1/functions/{name}/invoke-async`: the body is the event, as for `invoke`.
pub async fn invoke_async(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Option<Extension<Arc<FunctionCaller>>>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let target = crate::front::function_ref(name);
    crate::door_auth::admit(&state, &parts.headers, caller.is_some(), Some(&target.name)).await?;
    // The version named must serve now; it is resolved again when the event runs.
    if let Err((why, message)) = crate::front::resolve(&state, &target) {
        return Err(crate::front::not_found(&target, &why, message));
    }
    // Room for the body before it is read, when its length is given.
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let reserved = match length {
        Some(n) => Some(state.events.reserve(n).await.map_err(refused)?),
        None => None,
    };
    let limit = state.events.settings.max_payload_bytes;
    // The room taken is held while the body arrives: a slow sender may not keep it.
    let read = crate::invoke::read_invocation(parts, body, limit, reserved.is_some());
    let mut inv = tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!(
                    "the event's body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        })??;
    inv.origin = crate::request::origin();
    let id = inv.request_id.clone();
    let qualifier = target.qualifier.to_string();
    state
        .events
        .submit(
            &target.name,
            &qualifier,
            inv,
            reserved,
            &crate::events::config_of(&state.scheduler, &target.name),
        )
        .await
        .map_err(refused)?;
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(json!({ "request_id": id, "status": format!("/v1/async/{id}") })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-modelfn-request-id", v);
    }
    Ok(resp)
}

fn refused(r: Refused) -> ApiError {
    match r {
        Refused::TooLarge(limit) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("an asynchronous event is at most {limit} bytes (async_max_payload_kb)"),
        ),
        Refused::Full { waiting, limit_mb } => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                format!(
                    "the function's asynchronous queue holds {waiting} bytes of events, at its [async] max_queued_mb = {limit_mb}: try again once it drains"
                ),
            );
            e.retry_after_secs = Some(1);
            e
        }
        Refused::Storage(why) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            format!("the event could not be stored: {why}"),
        ),
    }
}

/// A body as JSON when it is JSON, else as text (lossy), for status answers.
fn body_value(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| Value::from(String::from_utf8_lossy(b)))
}

fn status_json(s: &EventStatus) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(r) = &s.result {
        v["result"] = body_value(r);
    }
    if let Some(p) = &s.payload {
        v["payload"] = body_value(p);
    }
    v
}

fn storage(e: modelfn_queue::QueueError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e.to_string())
}

/// `GET /v1/async/{request_id}`: where an asynchronous event is, and its answer.
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.events.queue.status(&id).await.map_err(storage)? {
        Some(s) => Ok(Json(status_json(&s))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no asynchronous event {id} (succeeded events are kept 24 hours)"),
        )),
    }
}

/// `GET /v1/async`: every function's queue.
pub async fn depths(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let depths = state.events.queue.depths().await.map_err(storage)?;
    Ok(Json(
        json!({ "functions": depths, "running": state.events.in_flight() }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadParams {
    pub function: Option<String>,
    pub id: Option<String>,
    pub limit: Option<usize>,
}

fn dead_query(p: DeadParams) -> DeadQuery {
    DeadQuery {
        function: p.function,
        id: p.id,
        limit: Some(p.limit.unwrap_or(100).clamp(1, 1000)),
    }
}

/// `GET /v1/dlq?function=&limit=`: dead letters, newest first, with their events.
pub async fn dead(
    State(state): State<AppState>,
    params: Result<Query<DeadParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let dead = state
        .events
        .queue
        .dead(&dead_query(p))
        .await
        .map_err(storage)?;
    Ok(Json(
        json!({ "events": dead.iter().map(status_json).collect::<Vec<_>>() }),
    ))
}

/// `POST /v1/dlq/redrive?function=&id=`: dead letters back to the queue, with fresh
/// attempts; at least one of the two must be given.
pub async fn redrive(
    State(state): State<AppState>,
    params: Result<Query<DeadParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if p.function.is_none() && p.id.is_none() {
        return Err(ApiError::bad_request(
            "name what to redrive: ?function=NAME, ?id=REQUEST_ID, or both",
        ));
    }
    let n = state
        .events
        .queue
        .redrive(&dead_query(p), state.events.settings.max_age)
        .await
        .map_err(storage)?;
    state.events.wake().await;
    Ok(Json(json!({ "redriven": n })))
}
