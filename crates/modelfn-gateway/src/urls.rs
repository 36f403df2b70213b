//! Function URLs: `/urls/{function}/...`, any method, any sub-path, with no auth or an
//! `x-api-key` (a modelfn key's secret).
//!
//! A code function receives the payload 2.0 event a Lambda function URL sends
//! (`version`, `rawPath`, `rawQueryString`, lower-cased `headers`, `cookies`,
//! `queryStringParameters`, `requestContext.http`, `body`, `isBase64Encoded`), and its
//! result is mapped as a function URL maps it: an object with `statusCode` gives the
//! status, `headers`, `cookies` and `body`; anything else is answered as JSON with 200.
//! A model receives the request body as the native API would.

use crate::error::ApiError;
use crate::payload_v2::{event_v2, map_result};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use modelfn_control::UrlAuth;
use modelfn_core::{Invocation, InvokeError, RuntimeKind};

use crate::error::message;

/// `ANY /urls/{function}` and `/urls/{function}/{*path}`
pub async fn call(
    State(state): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let name = params
        .iter()
        .find(|(k, _)| k == "function")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let sub = params
        .iter()
        .find(|(k, _)| k == "path")
        .map(|(_, v)| format!("/{v}"))
        .unwrap_or_else(|| "/".into());
    let Some((auth, target)) = state.control.url(&name) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    if auth == UrlAuth::Key {
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(refused) =
            crate::door_auth::admit_key(&state, &format!("url:{name}"), presented).await
        {
            return refused;
        }
    }
    let body = match crate::body::read(body, state.config.max_invoke_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    // Resolved once (by weight, or by the caller's sticky key): the version checked is
    // the version that runs, and the answer names it.
    let Ok(resolved) = crate::front::resolve_request(&state, &target, Some(&headers), &body) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut response = url_call(&state, &resolved, method, uri, headers, body, &sub).await;
    response.headers_mut().insert(
        "x-modelfn-version",
        HeaderValue::from(resolved.spec().version),
    );
    response
}

/// Runs a URL call on the version resolved.
async fn url_call(
    state: &AppState,
    resolved: &modelfn_scheduler::Resolved,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    sub: &str,
) -> Response {
    let request_id = crate::request::request_id();
    let name = resolved.spec().manifest.name.as_str();
    if resolved.spec().manifest.runtime == RuntimeKind::Onnx {
        // A model reads the request as the native API does.
        let inv = if method == Method::GET {
            match crate::invoke::query_event(uri.query().unwrap_or("")) {
                Ok(ev) => Invocation::new(
                    request_id,
                    Bytes::from(ev.to_string()),
                    Some("application/json"),
                ),
                Err(e) => return e.into_response(),
            }
        } else {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            match crate::invoke::form_to_json(body, ct) {
                Ok((b, ct)) => Invocation::new(request_id, b, ct),
                Err(e) => return e.into_response(),
            }
        };
        return match crate::front::invoke(state, resolved, inv).await {
            Ok((out, _)) => ([(header::CONTENT_TYPE, out.content_type)], out.body).into_response(),
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    // The caller's API key is the caller's credential, not the function's business.
    let mut headers = headers;
    headers.remove("x-api-key");
    let event = event_v2(
        name,
        &method,
        sub,
        uri.query(),
        &headers,
        &body,
        &request_id,
    );
    let inv = Invocation::new(
        request_id,
        Bytes::from(event.to_string()),
        Some("application/json"),
    )
    .with_trace(crate::request::trace(&headers));
    match crate::front::invoke(state, resolved, inv).await {
        Ok((out, _)) => map_result(&out.body),
        Err(InvokeError::FunctionNotFound(_)) => message(StatusCode::NOT_FOUND, "Not Found"),
        Err(InvokeError::Throttled { retry_after, .. }) => {
            let mut r = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            r
        }
        Err(e) => {
            tracing::debug!(function = %name, error = %e, "function URL call failed");
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
    }
}
