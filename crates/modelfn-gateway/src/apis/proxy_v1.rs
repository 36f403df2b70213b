//! Proxy integration 1.0 (REST API): the event a function receives, and the result it
//! must give back (an integer `statusCode` and a string `body`).

use super::call::RouteCall;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

/// The REST API proxy event (payload 1.0).
pub(crate) fn event_v1(call: &RouteCall<'_>) -> Value {
    let RouteCall {
        api,
        route,
        method,
        path,
        headers,
        ..
    } = *call;
    let (stage, stage_vars) = (&call.stage.name, &call.stage.variables);
    let (path_params, query, body, request_id) = (
        &call.path_params,
        &call.query_pairs,
        &call.body[..],
        &call.request_id,
    );
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        single.insert(k.as_str().to_string(), json!(v));
        if let Some(a) = multi
            .entry(k.as_str().to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            a.push(json!(v));
        }
    }
    let mut qs = Map::new();
    let mut mqs: Map<String, Value> = Map::new();
    for (k, v) in query {
        qs.insert(k.clone(), json!(v));
        if let Some(a) = mqs
            .entry(k.clone())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            a.push(json!(v));
        }
    }
    let or_null = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    let (body, b64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(t) => (json!(t), false),
        Err(_) => (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let h = |n: &str| header_text(headers, n);
    json!({
        "resource": route.path,
        "path": path,
        "httpMethod": method.as_str(),
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": or_null(qs),
        "multiValueQueryStringParameters": or_null(mqs),
        "pathParameters": if path_params.is_empty() { Value::Null } else { json!(path_params) },
        "stageVariables": if stage_vars.is_empty() { Value::Null } else { json!(stage_vars) },
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": method.as_str(),
            "path": format!("/{stage}{path}"),
            "stage": stage,
            "requestId": request_id,
            "apiId": api.name,
            "identity": {"sourceIp": headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1"), "userAgent": h("user-agent")},
            "requestTimeEpoch": modelfn_telemetry::time::now_ms(),
        },
        "body": body,
        "isBase64Encoded": b64,
    })
}

/// A REST proxy result: `statusCode` (integer), `headers`, `multiValueHeaders`, `body`
/// (a string), `isBase64Encoded`; anything else is malformed.
pub(crate) fn proxy_v1_result(out: &[u8]) -> Result<Response, String> {
    let v: Value = serde_json::from_slice(out).map_err(|_| "not JSON".to_string())?;
    let obj = v.as_object().ok_or("not an object")?;
    for k in obj.keys() {
        if ![
            "statusCode",
            "headers",
            "multiValueHeaders",
            "body",
            "isBase64Encoded",
            "cookies",
        ]
        .contains(&k.as_str())
        {
            return Err(format!("unexpected field '{k}'"));
        }
    }
    let status = obj
        .get("statusCode")
        .and_then(Value::as_u64)
        .ok_or("statusCode is missing or not an integer")?;
    let status = StatusCode::from_u16(status as u16)
        .map_err(|_| format!("statusCode {status} is not a status"))?;
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s))
            if obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) =>
        {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| "body is not base64".to_string())?
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err("body is not a string".into()),
    };
    let mut resp = (status, body).into_response();
    if let Some(Value::Object(hs)) = obj.get("headers") {
        for (k, v) in hs {
            if let (Ok(k), Some(Ok(v))) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                resp.headers_mut().insert(k, v);
            }
        }
    }
    if let Some(Value::Object(hs)) = obj.get("multiValueHeaders") {
        for (k, vs) in hs {
            let Ok(name) = header::HeaderName::from_bytes(k.as_bytes()) else {
                continue;
            };
            resp.headers_mut().remove(&name);
            for v in vs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Ok(v) = HeaderValue::from_str(v) {
                    resp.headers_mut().append(name.clone(), v);
                }
            }
        }
    }
    Ok(resp)
}

/// A request header as text (empty when absent or not text).
pub(crate) fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
