//! The native invoke API.
//!
//! - `POST /v1/functions/{name}/invoke`: the body is the event (JSON or, for models, CSV).
//! - `GET /v1/functions/{name}/invoke?sl=6.9&...`: query parameters become a JSON object
//!   event, numbers parsed (`sl=6.9` → `6.9`), other values kept as strings, repeated
//!   keys gathered into arrays.

use crate::body::{read_body, RequestBody};
use crate::error::ApiError;
use crate::request::request_id;
use crate::AppState;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use modelfn_core::FunctionCaller;
use modelfn_core::Invocation;
use serde_json::{Map, Number, Value};
use std::sync::Arc;

/// `POST /v1/functions/{name}/invoke`
///
/// Takes the whole request rather than a `HeaderMap` extractor, which would clone every
/// header of every call.
pub async fn invoke_post(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Option<Extension<Arc<FunctionCaller>>>,
    request: Request,
) -> Result<Response, ApiError> {
    post(&state, name, caller.is_some(), request).await
}

/// The function a front-door request names when it is exactly
/// `POST /v1/functions/{name}/invoke` with a name that needs no percent-decoding: the
/// front door ([`crate::serve`]) runs such a request through [`post`] itself, without the
/// router's per-request work (its clones of the state and of the route, the limit's
/// extension, the path's parameters). Anything else goes through the router, which
/// answers it the same way.
pub(crate) fn native_post_target(method: &Method, path: &str) -> Option<String> {
    if method != Method::POST {
        return None;
    }
    let name = path
        .strip_prefix("/v1/functions/")?
        .strip_suffix("/invoke")?;
    (!name.is_empty() && !name.contains(['/', '%'])).then(|| name.to_string())
}

/// A native POST: the caller admitted, the event read (at most `max_invoke_body_bytes`),
/// the reference resolved once, and the version it resolved to invoked. Generic over the
/// body, so that the front door hands hyper's body over as it is (not boxed as axum's).
pub(crate) async fn post<B: RequestBody>(
    state: &AppState,
    name: String,
    from_sandbox: bool,
    request: axum::http::Request<B>,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let target = crate::front::function_ref(name);
    crate::door_auth::admit(state, &parts.headers, from_sandbox, Some(&target.name)).await?;
    // Kept for a sticky alias's header: only when one is asked for, so a call pays nothing.
    let headers = if target.qualifier == modelfn_core::Qualifier::Latest {
        HeaderMap::new()
    } else {
        parts.headers.clone()
    };
    let inv = read_invocation(parts, body, state.config.max_invoke_body_bytes, false).await?;
    let resolved = crate::front::resolve_request(state, &target, Some(&headers), &inv.body);
    run(state, &target, resolved, inv).await
}

/// The invocation a native POST makes: its body (at most `limit` bytes; a form read as
/// JSON), media type and trace, under the request's id. With `room_taken`, the memory
/// for the body's declared length is already counted (the asynchronous door's room), and
/// it is taken at once.
pub(crate) async fn read_invocation<B: RequestBody>(
    parts: axum::http::request::Parts,
    body: B,
    limit: usize,
    room_taken: bool,
) -> Result<Invocation, ApiError> {
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    let trace = crate::request::trace(&parts.headers);
    // The limit is applied here, not read from the route's layer, so that the front
    // door's direct path and the router read a body alike.
    let body = read_body(body, limit, room_taken).await?;
    let content_type = content_type.as_ref().and_then(|v| v.to_str().ok());
    let (body, content_type) = form_to_json(body, content_type)?;
    Ok(Invocation::new(request_id(), body, content_type).with_trace(trace))
}

/// `GET /v1/functions/{name}/invoke?...`
pub async fn invoke_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    caller: Option<Extension<Arc<FunctionCaller>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let target = crate::front::function_ref(name);
    crate::door_auth::admit(&state, &headers, caller.is_some(), Some(&target.name)).await?;
    let event = query_event(query.as_deref().unwrap_or(""))?;
    let body = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
    let resolved = crate::front::resolve_request(&state, &target, Some(&headers), &body);
    run(
        &state,
        &target,
        resolved,
        Invocation::new(request_id(), body, Some("application/json"))
            .with_trace(crate::request::trace(&headers)),
    )
    .await
}

/// A form body (what `curl -d` sends by default) is read like a query string; one that
/// holds JSON (`curl -d '{"a": 1}'` without a content type) is read as JSON.
pub(crate) fn form_to_json(
    body: Bytes,
    content_type: Option<&str>,
) -> Result<(Bytes, Option<&str>), ApiError> {
    let is_form = content_type.is_some_and(|ct| {
        modelfn_core::invocation::media_type_is(ct, "application/x-www-form-urlencoded")
    });
    if !is_form {
        return Ok((body, content_type));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        return Ok((body, Some("application/json")));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the form body is not UTF-8"))?;
    let event = query_event(text)?;
    Ok((
        Bytes::from(serde_json::to_vec(&event).unwrap_or_default()),
        Some("application/json"),
    ))
}

/// The headers every native answer carries, named once (not parsed per response).
const VERSION: HeaderName = HeaderName::from_static("x-modelfn-version");
const COLD_START: HeaderName = HeaderName::from_static("x-modelfn-cold-start");
const QUEUE_WAIT: HeaderName = HeaderName::from_static("x-modelfn-queue-wait-ms");
const INIT_DURATION: HeaderName = HeaderName::from_static("x-modelfn-init-duration-ms");
const RESTORED: HeaderName = HeaderName::from_static("x-modelfn-restored");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-modelfn-request-id");

async fn run(
    state: &AppState,
    target: &modelfn_core::FunctionRef,
    resolved: Result<modelfn_scheduler::Resolved, (modelfn_scheduler::Unresolved, String)>,
    inv: Invocation,
) -> Result<Response, ApiError> {
    let name = target.name.as_str();
    // The id's header, made before the invocation takes the id (no copy of the string).
    let id_header = HeaderValue::from_str(&inv.request_id).ok();
    let result = match resolved {
        Ok(resolved) => crate::front::invoke(state, &resolved, inv)
            .await
            .map_err(ApiError::from),
        Err((why, message)) => Err(crate::front::not_found(target, &why, message)),
    };
    let mut resp = match result {
        Ok((output, report)) => {
            tracing::debug!(request_id = ?id_header, function = name, cold = report.cold_start, duration_us = report.duration.as_micros() as u64, "invoked");
            // Made directly: axum's `IntoResponse` for bytes would set a content type only
            // for it to be replaced.
            let mut resp = Response::new(axum::body::Body::from(output.body));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(output.content_type),
            );
            h.insert(VERSION, number_header(report.version));
            h.insert(
                COLD_START,
                HeaderValue::from_static(if report.cold_start { "true" } else { "false" }),
            );
            h.insert(QUEUE_WAIT, ms_header(report.queue_wait));
            if let Some(init) = report.init_duration {
                h.insert(INIT_DURATION, ms_header(init));
                if report.restored {
                    h.insert(RESTORED, HeaderValue::from_static("true"));
                }
            }
            resp
        }
        Err(e) => e.into_response(),
    };
    if let Some(v) = id_header {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(resp)
}

/// A number's header; below 100 (the versions nearly every function serves) a slice of
/// a static string, where `HeaderValue::from` allocates twice.
fn number_header(n: u64) -> HeaderValue {
    const SMALL: &str = "0123456789101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let at = match n {
        0..=9 => Some((n as usize, 1)),
        10..=99 => Some((10 + 2 * (n as usize - 10), 2)),
        _ => None,
    };
    match at {
        Some((i, len)) => HeaderValue::from_static(&SMALL[i..i + len]),
        None => HeaderValue::from(n),
    }
}

/// Milliseconds to three decimals, written on the stack: `itoa` for the whole part and
/// three digits for the microseconds (no `String`, no formatting machinery, no 128-bit
/// division per call).
fn ms_header(d: std::time::Duration) -> HeaderValue {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut whole = itoa::Buffer::new();
    let whole = whole.format(us / 1000).as_bytes();
    let mut buf = [0u8; 24];
    buf[..whole.len()].copy_from_slice(whole);
    let frac = us % 1000;
    let n = whole.len();
    buf[n..n + 4].copy_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    HeaderValue::from_bytes(&buf[..n + 4]).unwrap_or(HeaderValue::from_static("0"))
}

/// Builds the event of a GET from its query string.
pub fn query_event(query: &str) -> Result<Value, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::bad_request(format!("the query string is malformed: {e}")))?;
    let mut map = Map::new();
    for (k, v) in pairs {
        let value = parse_scalar(&v);
        match map.get_mut(&k) {
            Some(Value::Array(items)) => items.push(value),
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(k, value);
            }
        }
    }
    Ok(Value::Object(map))
}

/// `"6.9"` → `6.9`; anything that is not a plain finite number stays a string.
fn parse_scalar(v: &str) -> Value {
    let t = v.trim();
    let numeric = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if numeric {
        if let Some(n) = t
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .and_then(Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_strings_become_events() {
        assert_eq!(
            query_event("sl=6.9&sw=3.1&pl=5.1&pw=2.3").unwrap(),
            json!({"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3})
        );
        assert_eq!(
            query_event("num=test&x=1&x=2&inf=inf&e=").unwrap(),
            json!({"num": "test", "x": [1.0, 2.0], "inf": "inf", "e": ""})
        );
        assert_eq!(query_event("").unwrap(), json!({}));
    }

    #[test]
    fn number_headers_match_the_formatted_number() {
        for n in (0..=120).chain([999, 1000, u64::MAX]) {
            assert_eq!(number_header(n), HeaderValue::from(n), "{n}");
        }
    }

    #[test]
    fn millisecond_headers_have_three_decimals() {
        use std::time::Duration;
        for (d, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(999), "0.000"),
            (Duration::from_micros(7), "0.007"),
            (Duration::from_micros(1_234), "1.234"),
            (Duration::from_micros(60_000_050), "60000.050"),
            (Duration::MAX, "18446744073709551.615"),
        ] {
            assert_eq!(ms_header(d), text, "{d:?}");
        }
    }
}
