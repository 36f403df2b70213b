//! Serving `/apis/{api}/{stage}/{path}`: route matching, auth, CORS, limits, and the
//! integrations: proxy events 1.0 (REST API) and 2.0 (HTTP API), or mapping templates.
//!
//! As API Gateway does: a function error behind a proxy route is a 502
//! `{"message": "Internal server error"}`, and so is a proxy result without an integer
//! `statusCode` and a string `body` (1.0). Behind a mapping route a function error comes
//! back as HTTP 200 with the error JSON. A route past its timeout answers 504
//! `{"message": "Endpoint request timed out"}`. A model behind any route reads the
//! request, or the rendered template, as the native API does.

use super::definition::{Api, Integration, Route};
use super::proxy_v1::{event_v1, header_text, proxy_v1_result};
use super::template::Inputs;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use modelfn_core::{Invocation, InvokeError, RuntimeKind};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::message;

fn allowed_origin(api: &Api, headers: &HeaderMap) -> Option<HeaderValue> {
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

/// `ANY /apis/{api}/{stage}` and `/apis/{api}/{stage}/{*path}`
pub async fn call(
    State(state): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (api_name, stage_name) = (
        get("api").unwrap_or_default(),
        get("stage").unwrap_or_default(),
    );
    let path = format!("/{}", get("path").unwrap_or_default());
    let Some(api) = state.apis.get(&api_name) else {
        return message(StatusCode::NOT_FOUND, &format!("no API '{api_name}'"));
    };
    let Some(stage) = api.stages.iter().find(|s| s.name == stage_name) else {
        return message(
            StatusCode::NOT_FOUND,
            &format!("API '{api_name}' has no stage '{stage_name}'"),
        );
    };
    let origin = allowed_origin(&api, &headers);
    if method == Method::OPTIONS
        && api.cors.is_some()
        && headers.contains_key("access-control-request-method")
    {
        let cors = api.cors.as_ref();
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        if let Some(o) = origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
        let methods = cors
            .map(|c| c.allow_methods.join(","))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "GET,POST,PUT,PATCH,DELETE,OPTIONS".into());
        let allow_headers = cors
            .map(|c| c.allow_headers.join(","))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "content-type,x-api-key,authorization".into());
        if let Ok(v) = HeaderValue::from_str(&methods) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if let Ok(v) = HeaderValue::from_str(&allow_headers) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(age) = cors.and_then(|c| c.max_age_s) {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
        return resp;
    }
    let Some((route, path_params)) = api.route(method.as_str(), &path) else {
        return message(
            StatusCode::NOT_FOUND,
            &format!("no route for {method} {path} in stage {stage_name}"),
        );
    };
    let mut resp = serve_route(
        &state,
        &api,
        &stage.name,
        &stage.variables,
        route,
        path_params,
        &method,
        &path,
        uri.query(),
        &headers,
        body,
    )
    .await;
    if let Some(o) = origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
async fn serve_route(
    state: &AppState,
    api: &Api,
    stage: &str,
    stage_vars: &BTreeMap<String, String>,
    route: &Route,
    path_params: BTreeMap<String, String>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if route.require_key {
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(refused) =
            crate::door_auth::admit_key(state, &format!("{}/{stage}", api.name), presented).await
        {
            return refused;
        }
    }
    if body.len() > route.max_body_bytes {
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "Request Too Long: the limit of this route is {} bytes",
                route.max_body_bytes
            ),
        );
    }
    let Some(spec) = state.scheduler.spec(&route.function) else {
        return message(
            StatusCode::BAD_GATEWAY,
            &format!("the route's function '{}' does not exist", route.function),
        );
    };
    let is_model = spec.manifest.runtime == RuntimeKind::Onnx;
    let request_id = crate::request::request_id();
    let query_pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let (event, content_type): (Bytes, Option<&str>) = match (&route.integration, is_model) {
        (Integration::Mapping { request, .. }, _) => {
            let inputs = Inputs {
                body: String::from_utf8_lossy(&body).into_owned(),
                path: path_params.clone(),
                query: query_pairs
                    .iter()
                    .rev()
                    .cloned()
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect(),
                headers: headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                context: context(&request_id, method, stage, &route.path, &api.name, headers),
                stage_variables: stage_vars.clone(),
            };
            let rendered = request.render(&inputs);
            if serde_json::from_str::<serde::de::IgnoredAny>(&rendered).is_err() {
                tracing::warn!(api = %api.name, route = %route.path, "the request template did not render JSON: {rendered}");
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error: the request template did not render JSON",
                );
            }
            (Bytes::from(rendered), Some("application/json"))
        }
        (Integration::Proxy { .. }, true) => {
            if *method == Method::GET {
                match crate::invoke::query_event(query.unwrap_or("")) {
                    Ok(ev) => (Bytes::from(ev.to_string()), Some("application/json")),
                    Err(e) => return e.into_response(),
                }
            } else {
                let ct = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                match crate::invoke::form_to_json(body.clone(), ct) {
                    Ok((b, ct)) => (b, ct),
                    Err(e) => return e.into_response(),
                }
            }
        }
        (Integration::Proxy { v2: false }, false) => {
            let ev = event_v1(
                api,
                stage,
                stage_vars,
                route,
                &path_params,
                method,
                path,
                &query_pairs,
                headers,
                &body,
                &request_id,
            );
            (Bytes::from(ev.to_string()), Some("application/json"))
        }
        (Integration::Proxy { v2: true }, false) => {
            let mut ev = crate::payload_v2::event_v2(
                &api.name,
                method,
                path,
                query,
                headers,
                &body,
                &request_id,
            );
            let route_key = format!("{} {}", route.method, route.path);
            ev["routeKey"] = json!(route_key);
            ev["requestContext"]["routeKey"] = json!(route_key);
            ev["requestContext"]["stage"] = json!(stage);
            if !path_params.is_empty() {
                ev["pathParameters"] = json!(path_params);
            }
            if !stage_vars.is_empty() {
                ev["stageVariables"] = json!(stage_vars);
            }
            (Bytes::from(ev.to_string()), Some("application/json"))
        }
    };
    let ct = content_type.map(str::to_string);
    let inv = Invocation::new(request_id.clone(), event, ct.as_deref());
    let invoked = tokio::time::timeout(
        Duration::from_millis(route.timeout_ms),
        state.scheduler.invoke(&route.function, inv),
    )
    .await;
    let result = match invoked {
        Ok(r) => r,
        Err(_) => return message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
    };
    match (&route.integration, result) {
        (_, Err(InvokeError::Throttled { retry_after, .. })) => {
            let mut r = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            r
        }
        (_, Err(e @ (InvokeError::InvalidInput(_) | InvokeError::UnsupportedMediaType { .. }))) if is_model => crate::ApiError::from(e).into_response(),
        (Integration::Mapping { response, .. }, result) => {
            // API Gateway's default: a function error comes back as 200 with its JSON.
            let out: Vec<u8> = match result {
                Ok((o, _)) => o.body.to_vec(),
                Err(e) => match e.function_error() {
                    Some(fe) => serde_json::to_vec(&fe).unwrap_or_default(),
                    None => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
                },
            };
            let body = match response {
                Some(t) => {
                    let inputs = Inputs { body: String::from_utf8_lossy(&out).into_owned(), ..Inputs::default() };
                    t.render(&inputs).into_bytes()
                }
                None => out,
            };
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        (Integration::Proxy { .. }, Ok((out, _))) if is_model => ([(header::CONTENT_TYPE, out.content_type)], out.body).into_response(),
        (Integration::Proxy { v2: true }, Ok((out, _))) => crate::payload_v2::map_result(&out.body),
        (Integration::Proxy { v2: false }, Ok((out, _))) => proxy_v1_result(&out.body).unwrap_or_else(|why| {
            tracing::warn!(api = %api.name, route = %route.path, "Malformed Lambda proxy response: {why}");
            message(StatusCode::BAD_GATEWAY, "Internal server error")
        }),
        (Integration::Proxy { .. }, Err(e)) => {
            tracing::debug!(api = %api.name, route = %route.path, error = %e, "function failed behind a proxy route");
            message(StatusCode::BAD_GATEWAY, "Internal server error")
        }
    }
}

fn context(
    request_id: &str,
    method: &Method,
    stage: &str,
    resource: &str,
    api: &str,
    headers: &HeaderMap,
) -> BTreeMap<String, String> {
    let h = |n: &str| header_text(headers, n);
    let source = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    BTreeMap::from([
        ("requestId".to_string(), request_id.to_string()),
        ("httpMethod".to_string(), method.as_str().to_string()),
        ("stage".to_string(), stage.to_string()),
        ("resourcePath".to_string(), resource.to_string()),
        ("apiId".to_string(), api.to_string()),
        ("identity.sourceIp".to_string(), source),
        ("identity.userAgent".to_string(), h("user-agent")),
    ])
}
