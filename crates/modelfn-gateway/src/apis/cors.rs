//! CORS for APIs that declare it: the allowed origin of a request, and the preflight
//! answer (`OPTIONS` with `Access-Control-Request-Method`).

use super::definition::Api;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// The `Access-Control-Allow-Origin` a response to this request carries, if any.
pub(crate) fn allowed_origin(api: &Api, headers: &HeaderMap) -> Option<HeaderValue> {
    let cors = api.cors.as_ref()?;
    if cors.allow_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = headers.get(header::ORIGIN)?;
    cors.allow_origins
        .iter()
        .any(|o| o.as_bytes() == origin.as_bytes())
        .then(|| origin.clone())
}

/// The preflight answer, when this request is one.
pub(crate) fn preflight(
    api: &Api,
    method: &Method,
    headers: &HeaderMap,
    origin: Option<HeaderValue>,
) -> Option<Response> {
    let cors = api.cors.as_ref()?;
    if *method != Method::OPTIONS || !headers.contains_key("access-control-request-method") {
        return None;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    let joined = |list: &[String], default: &str| {
        if list.is_empty() {
            default.to_string()
        } else {
            list.join(",")
        }
    };
    let methods = joined(&cors.allow_methods, "GET,POST,PUT,PATCH,DELETE,OPTIONS");
    let allow_headers = joined(&cors.allow_headers, "content-type,x-api-key,authorization");
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    if let Ok(v) = HeaderValue::from_str(&allow_headers) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(age) = cors.max_age_s {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    Some(resp)
}
