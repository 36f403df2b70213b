//! The payload 2.0 shape, shared by function URLs and HTTP-API proxy routes: the event a
//! function receives (`version`, `rawPath`, `rawQueryString`, lower-cased `headers`,
//! `cookies`, `queryStringParameters`, `requestContext.http`, `body`,
//! `isBase64Encoded`), and its result mapped back (an object with `statusCode` gives the
//! status, `headers`, `cookies` and `body`; anything else is JSON with 200).

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::error::message;

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
