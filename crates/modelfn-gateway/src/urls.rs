//! Function URLs: `/urls/{function}/...`, any method, any sub-path, with no auth or an
//! `x-api-key` (a modelfn key's secret).
//!
//! A code function receives the payload 2.0 event a Lambda function URL sends
//! (`version`, `rawPath`, `rawQueryString`, lower-cased `headers`, `cookies`,
//! `queryStringParameters`, `requestContext.http`, `body`, `isBase64Encoded`), and its
//! result is mapped as a function URL maps it: an object with `statusCode` gives the
//! status, `headers`, `cookies` and `body`; anything else is answered as JSON with 200.
//! A model receives the request body as the native API would.

use crate::error::{body_rejection, ApiError};
use crate::AppState;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use modelfn_control::UrlAuth;
use modelfn_core::{Invocation, InvokeError, RuntimeKind};
use serde_json::{json, Map, Value};

fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({ "message": msg }))).into_response()
}

/// `ANY /urls/{function}` and `/urls/{function}/{*path}`
pub async fn call(
    State(state): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
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
    let Some(auth) = state.control.url_auth(&name) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    if auth == UrlAuth::Key {
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(refused) =
            crate::apis::serve::admit(&state, &format!("url:{name}"), presented).await
        {
            return refused;
        }
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_rejection(e, state.config.max_invoke_body_bytes).into_response(),
    };
    let Some(spec) = state.scheduler.spec(&name) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let request_id = crate::invoke::new_request_id();
    if spec.manifest.runtime == RuntimeKind::Onnx {
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
        return match state.scheduler.invoke(&name, inv).await {
            Ok((out, _)) => ([(header::CONTENT_TYPE, out.content_type)], out.body).into_response(),
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    // The caller's API key is the caller's credential, not the function's business.
    let mut headers = headers;
    headers.remove("x-api-key");
    let event = event_v2(
        &name,
        &method,
        &sub,
        uri.query(),
        &headers,
        &body,
        &request_id,
    );
    let inv = Invocation::new(
        request_id,
        Bytes::from(event.to_string()),
        Some("application/json"),
    );
    match state.scheduler.invoke(&name, inv).await {
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

/// The payload 2.0 event of a function URL.
pub fn event_v2(
    function: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Value {
    let mut hs: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (k, v) in headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        if k == header::COOKIE {
            cookies.extend(
                v.split(';')
                    .map(|c| Value::String(c.trim().to_string()))
                    .filter(|c| c != ""),
            );
            continue;
        }
        match hs.get_mut(k.as_str()) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                hs.insert(k.as_str().to_string(), Value::String(v));
            }
        }
    }
    let mut qs: Map<String, Value> = Map::new();
    for (k, v) in
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or("")).unwrap_or_default()
    {
        match qs.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                qs.insert(k, Value::String(v));
            }
        }
    }
    let now = modelfn_telemetry::time::now_ms();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let mut ev = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query.unwrap_or(""),
        "headers": hs,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": function,
            "domainName": host,
            "domainPrefix": function,
            "http": {
                "method": method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1"),
                "userAgent": headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": modelfn_telemetry::time::rfc3339_ms(now),
            "timeEpoch": now,
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        ev["cookies"] = Value::Array(cookies);
    }
    if !qs.is_empty() {
        ev["queryStringParameters"] = Value::Object(qs);
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => ev["body"] = json!(text),
            Err(_) => {
                ev["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
                ev["isBase64Encoded"] = json!(true);
            }
        }
    }
    ev
}

/// A function URL's answer from what the handler returned.
pub fn map_result(out: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(out) else {
        return (StatusCode::OK, Bytes::copy_from_slice(out)).into_response();
    };
    let Some(status) = v.get("statusCode").and_then(Value::as_u64) else {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::copy_from_slice(out),
        )
            .into_response();
    };
    let Ok(status) = StatusCode::from_u16(status as u16) else {
        return message(
            StatusCode::BAD_GATEWAY,
            "the function returned an invalid statusCode",
        );
    };
    let body = match v.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s))
            if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) =>
        {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => b,
                Err(_) => {
                    return message(
                        StatusCode::BAD_GATEWAY,
                        "the function returned a body that is not base64",
                    )
                }
            }
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut resp = (status, body).into_response();
    if let Some(Value::Object(hs)) = v.get("headers") {
        for (k, val) in hs {
            let text = match val.as_str() {
                Some(s) => s.to_string(),
                None => val.to_string(),
            };
            if let (Ok(k), Ok(val)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&text),
            ) {
                resp.headers_mut().insert(k, val);
            }
        }
    }
    if let Some(Value::Array(cs)) = v.get("cookies") {
        for c in cs.iter().filter_map(Value::as_str) {
            if let Ok(val) = HeaderValue::from_str(c) {
                resp.headers_mut().append(header::SET_COOKIE, val);
            }
        }
    }
    resp
}
