//! Serving `/apis/{api}/{stage}/{path}`: route matching, auth, limits, and the
//! integrations: proxy events 1.0 (REST API, [`super::proxy_v1`]) and 2.0 (HTTP API,
//! [`super::proxy_v2`]), or mapping templates ([`super::mapping`]); CORS in
//! [`super::cors`].
//!
//! As API Gateway does: a function error behind a proxy route is a 502
//! `{"message": "Internal server error"}`, and so is a proxy result without an integer
//! `statusCode` and a string `body` (1.0). Behind a mapping route a function error comes
//! back as HTTP 200 with the error JSON. A route past its timeout answers 504
//! `{"message": "Endpoint request timed out"}`. A model behind any route reads the
//! request, or the rendered template, as the native API does.

use super::call::RouteCall;
use super::cors::{allowed_origin, preflight};
use super::definition::Integration;
use super::proxy_v1::{event_v1, proxy_v1_result};
use crate::error::message;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use modelfn_core::{Invocation, InvocationOutput, InvokeError, RuntimeKind};
use modelfn_scheduler::InvocationReport;
use std::time::Duration;

/// `ANY /apis/{api}/{stage}` and `/apis/{api}/{stage}/{*path}`
pub async fn call(
    State(state): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (api_name, stage_name) = (get("api").unwrap_or(""), get("stage").unwrap_or(""));
    let path = format!("/{}", get("path").unwrap_or(""));
    let Some(api) = state.apis.get(api_name) else {
        return message(StatusCode::NOT_FOUND, &format!("no API '{api_name}'"));
    };
    let Some(stage) = api.stages.iter().find(|s| s.name == stage_name) else {
        return message(
            StatusCode::NOT_FOUND,
            &format!("API '{api_name}' has no stage '{stage_name}'"),
        );
    };
    let origin = allowed_origin(&api, &headers);
    if let Some(answer) = preflight(&api, &method, &headers, origin.clone()) {
        return answer;
    }
    let Some((route, path_params)) = api.route(method.as_str(), &path) else {
        return message(
            StatusCode::NOT_FOUND,
            &format!("no route for {method} {path} in stage {stage_name}"),
        );
    };
    // Read under the route's own limit (at most the door's): a declared length over it is
    // refused unread.
    let door_limit = super::definition::DEFAULT_MAX_BODY.max(state.config.max_invoke_body_bytes);
    let limit = route.max_body_bytes.min(door_limit);
    let body = match crate::body::read(body, limit).await {
        Ok(b) => b,
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request Too Long: the limit of this route is {limit} bytes"),
            )
        }
        Err(e) => return message(e.status, &e.message),
    };
    let call = RouteCall {
        api: &api,
        stage,
        route,
        path_params,
        method: &method,
        path: &path,
        query: uri.query(),
        query_pairs: serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default(),
        headers: &headers,
        body,
        request_id: crate::request::request_id().to_string(),
    };
    let route_name = format!("{api_name} {stage_name} {} {}", route.method, route.path);
    let mut resp = call.serve(&state).await;
    crate::http_metrics::count_route(&route_name, resp.status().as_u16());
    if let Some(o) = origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp
}

impl RouteCall<'_> {
    async fn serve(self, state: &AppState) -> Response {
        let (api, route) = (self.api, self.route);
        if route.require_key {
            let presented = self
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let target = format!("{}/{}", api.name, self.stage.name);
            if let Some(refused) = crate::door_auth::admit_key(state, &target, presented).await {
                return refused;
            }
        }
        // Resolved once (a version or an alias, by weight or the caller's sticky key): the
        // version whose shape the event takes is the one that runs.
        let target = match crate::front::resolve_request(
            state,
            &route.target,
            Some(self.headers),
            &self.body,
        ) {
            Ok(t) => t,
            Err((_, why)) => {
                return message(
                    StatusCode::BAD_GATEWAY,
                    &format!("the route's function {}: {why}", route.function),
                )
            }
        };
        let is_model = target.spec().manifest.runtime == RuntimeKind::Onnx;
        let (event, content_type) = match self.event(is_model) {
            Ok(e) => e,
            Err(refused) => return *refused,
        };
        let inv = Invocation::new(self.request_id.clone(), event, content_type.as_deref());
        let invoked = tokio::time::timeout(
            Duration::from_millis(route.timeout_ms),
            crate::front::invoke(state, &target, inv),
        )
        .await;
        match invoked {
            Ok(result) => self.render(result, is_model),
            Err(_) => message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
        }
    }

    /// The event the route's integration sends, and its media type.
    fn event(&self, is_model: bool) -> Result<(Bytes, Option<String>), Box<Response>> {
        let json = |v: serde_json::Value| {
            (
                Bytes::from(v.to_string()),
                Some("application/json".to_string()),
            )
        };
        match (&self.route.integration, is_model) {
            (Integration::Mapping { request, .. }, _) => {
                let rendered = request.render(&super::mapping::inputs(self));
                if serde_json::from_str::<serde::de::IgnoredAny>(&rendered).is_err() {
                    tracing::warn!(api = %self.api.name, route = %self.route.path, "the request template did not render JSON: {rendered}");
                    return Err(Box::new(message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal server error: the request template did not render JSON",
                    )));
                }
                Ok((Bytes::from(rendered), Some("application/json".into())))
            }
            // A model reads the request as the native API does.
            (Integration::Proxy { .. }, true) if *self.method == Method::GET => {
                crate::invoke::query_event(self.query.unwrap_or(""))
                    .map(json)
                    .map_err(|e| Box::new(e.into_response()))
            }
            (Integration::Proxy { .. }, true) => {
                let ct = self
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                crate::invoke::form_to_json(self.body.clone(), ct)
                    .map(|(b, ct)| (b, ct.map(str::to_string)))
                    .map_err(|e| Box::new(e.into_response()))
            }
            (Integration::Proxy { v2: false }, false) => Ok(json(event_v1(self))),
            (Integration::Proxy { v2: true }, false) => Ok(json(super::proxy_v2::event_v2(self))),
        }
    }

    /// The HTTP answer to the function's result, as the integration shapes it.
    fn render(
        &self,
        result: Result<(InvocationOutput, InvocationReport), InvokeError>,
        is_model: bool,
    ) -> Response {
        let (api, route) = (self.api, self.route);
        match (&route.integration, result) {
            (_, Err(InvokeError::Throttled { retry_after, .. })) => {
                let mut r = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
                r
            }
            (_, Err(e @ (InvokeError::InvalidInput(_) | InvokeError::UnsupportedMediaType { .. })))
                if is_model =>
            {
                crate::ApiError::from(e).into_response()
            }
            (Integration::Mapping { response, .. }, result) => {
                // API Gateway's default: a function error comes back as 200 with its JSON.
                let out: Vec<u8> = match result {
                    Ok((o, _)) => o.body.to_vec(),
                    Err(e) => match e.function_error() {
                        Some(fe) => serde_json::to_vec(&fe).unwrap_or_default(),
                        None => {
                            return message(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "Internal server error",
                            )
                        }
                    },
                };
                let body = match response {
                    Some(t) => t
                        .render(&super::template::Inputs {
                            body: String::from_utf8_lossy(&out).into_owned(),
                            ..Default::default()
                        })
                        .into_bytes(),
                    None => out,
                };
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            (Integration::Proxy { .. }, Ok((out, _))) if is_model => {
                ([(header::CONTENT_TYPE, out.content_type)], out.body).into_response()
            }
            (Integration::Proxy { v2: true }, Ok((out, _))) => {
                crate::payload_v2::map_result(&out.body)
            }
            (Integration::Proxy { v2: false }, Ok((out, _))) => proxy_v1_result(&out.body)
                .unwrap_or_else(|why| {
                    tracing::warn!(api = %api.name, route = %route.path, "Malformed Lambda proxy response: {why}");
                    message(StatusCode::BAD_GATEWAY, "Internal server error")
                }),
            (Integration::Proxy { .. }, Err(e)) => {
                tracing::debug!(api = %api.name, route = %route.path, error = %e, "function failed behind a proxy route");
                message(StatusCode::BAD_GATEWAY, "Internal server error")
            }
        }
    }
}
