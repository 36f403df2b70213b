//! The Lambda Runtime API, server side, for one instance.
//!
//! `GET /runtime/invocation/next` long-polls for the next event; the answer carries
//! `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`,
//! `-Trace-Id` and `Content-Type: application/json` (awslambdaric crashes without it).
//! `POST .../{id}/response` and `.../{id}/error` answer it; `POST /runtime/init/error`
//! reports a failed start. A function error's type comes from the body's `errorType`
//! first, the `Lambda-Runtime-Function-Error-Type` header second.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modelfn_core::FunctionError;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// Lambda's synchronous response limit.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// An event waiting for the process.
pub struct Pending {
    pub request_id: String,
    pub body: Bytes,
    /// The event's media type (`application/json` unless the caller sent something else).
    pub content_type: String,
    /// Unix milliseconds.
    pub deadline_ms: u64,
    pub trace_id: String,
    pub reply: oneshot::Sender<Outcome>,
}

/// How an invocation ended, as the process reported it.
#[derive(Debug)]
pub enum Outcome {
    Response {
        body: Bytes,
        content_type: Option<String>,
    },
    Error(FunctionError),
}

/// Where the process is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Starting,
    /// It asked for its first event: initialization is over.
    Ready,
    /// It reported a failed initialization.
    InitError(FunctionError),
}

/// The state one instance's API shares with the instance.
pub struct ApiState {
    pub next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    pub in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    pub status: watch::Sender<Status>,
    /// The request the process is working on (for tagging its output).
    pub current: Arc<Mutex<Option<String>>>,
    pub function_arn: String,
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"errorMessage": message, "errorType": error_type})),
    )
        .into_response()
}

/// Connections one instance may hold open to its Runtime API (clients use one or two).
pub const MAX_CONNECTIONS: usize = 16;

/// Serves the Runtime API on `listener`, at most [`MAX_CONNECTIONS`] at once: a function
/// opening more has them closed, so it cannot spend the server's descriptors.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

/// Serves the Runtime API on one connection modelfn handed to the process itself (a
/// snap-start instance's socket pair): no other process can reach it.
pub async fn serve_one(stream: tokio::net::UnixStream, app: Router) {
    let service = hyper_util::service::TowerToHyperService::new(app);
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

/// The Runtime API routes for one instance.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES))
        .with_state(state)
}

async fn next(State(state): State<Arc<ApiState>>) -> Response {
    state.status.send_if_modified(|s| {
        if *s == Status::Starting {
            *s = Status::Ready;
            true
        } else {
            false
        }
    });
    let pending = state.next.lock().await.recv().await;
    let Some(p) = pending else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.Shutdown",
            "the instance is shutting down",
        );
    };
    if let Ok(mut cur) = state.current.lock() {
        *cur = Some(p.request_id.clone());
    }
    let mut resp = (StatusCode::OK, p.body).into_response();
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, "lambda-runtime-aws-request-id", &p.request_id);
    set(h, "lambda-runtime-deadline-ms", &p.deadline_ms.to_string());
    set(
        h,
        "lambda-runtime-invoked-function-arn",
        &state.function_arn,
    );
    set(h, "lambda-runtime-trace-id", &p.trace_id);
    set(h, "content-type", &p.content_type);
    if let Ok(mut map) = state.in_flight.lock() {
        map.insert(p.request_id, p.reply);
    }
    resp
}

fn take(state: &ApiState, id: &str) -> Option<oneshot::Sender<Outcome>> {
    state.in_flight.lock().ok().and_then(|mut m| m.remove(id))
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "OK"}))).into_response()
}

fn unknown_request(id: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("request {id} is not waiting for an answer (unknown, or already answered)"),
    )
}

async fn response(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(reply) = take(&state, &id) else {
        return unknown_request(&id);
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = reply.send(Outcome::Response { body, content_type });
    accepted()
}

/// Reads a function error from the body, falling back on the header for the type.
fn function_error(headers: &HeaderMap, body: &[u8]) -> FunctionError {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut err = serde_json::from_slice::<FunctionError>(body).unwrap_or_else(|_| {
        FunctionError::new(
            "",
            String::from_utf8_lossy(body)
                .chars()
                .take(4096)
                .collect::<String>(),
        )
    });
    if err.error_type.is_empty() {
        err.error_type = if header_type.is_empty() {
            "Unhandled".into()
        } else {
            header_type
        };
    }
    err
}

async fn error(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(reply) = take(&state, &id) else {
        return unknown_request(&id);
    };
    let _ = reply.send(Outcome::Error(function_error(&headers, &body)));
    accepted()
}

async fn init_error(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let err = function_error(&headers, &body);
    state.status.send_replace(Status::InitError(err));
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_from_body_then_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("unhandled"),
        );
        let e = function_error(
            &h,
            br#"{"errorType": "ValueError", "errorMessage": "boom", "stackTrace": ["x"]}"#,
        );
        assert_eq!(
            (
                e.error_type.as_str(),
                e.error_message.as_str(),
                e.stack_trace.len()
            ),
            ("ValueError", "boom", 1)
        );
        let e = function_error(&h, br#"{"errorMessage": "no type"}"#);
        assert_eq!(e.error_type, "unhandled");
        let e = function_error(&HeaderMap::new(), b"plain text");
        assert_eq!(
            (e.error_type.as_str(), e.error_message.as_str()),
            ("Unhandled", "plain text")
        );
    }
}
