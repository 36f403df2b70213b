//! Who may call the open doors (the native invoke API, OIP and KServe V1): the server's
//! `invoke_auth` for every function, raised per function by its manifest's
//! `[access] native`. `"key"` wants the API key of a modelfn access key as `x-api-key`;
//! `"token"` wants the admin token. A request from a sandbox (`AWS_ENDPOINT_URL`) was
//! already held to its function's `[permissions]` by [`crate::sandbox`], and passes.

use crate::admin::constant_time_eq;
use crate::error::ApiError;
use crate::sandbox::{target, Target};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use modelfn_core::{DoorAuth, FunctionCaller};
use std::sync::Arc;

/// The middleware form, for doors whose function is known only from the path (OIP and
/// KServe V1). The native invoke API calls [`admit`] itself, which costs less.
pub async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let from_sandbox = req.extensions().get::<Arc<FunctionCaller>>().is_some();
    let function = match target(req.uri().path()) {
        Target::Health => return next.run(req).await,
        Target::Function(f) => Some(f),
        Target::Bucket(_) | Target::Other => None,
    };
    match admit(&state, req.headers(), from_sandbox, function.as_deref()).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Whether a caller may call `function` (or, for `None`, the door itself) through an
/// open door: the stricter of the server's `invoke_auth` and the function's
/// `[access] native`. Calls from a sandbox were held to its grants already.
pub async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    from_sandbox: bool,
    function: Option<&str>,
) -> Result<(), ApiError> {
    if from_sandbox {
        return Ok(());
    }
    let function_needs = function
        .and_then(|f| state.scheduler.spec(f))
        .map(|s| s.manifest.access.native)
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let refused = match state.config.invoke_auth.max(function_needs) {
        DoorAuth::None => return Ok(()),
        DoorAuth::Key => {
            let presented = headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match state.control.api_key_owner(presented).await? {
                Some(key) => {
                    crate::request::authenticated(started, Some(&key));
                    None
                }
                None if presented.is_empty() => Some("this function requires an API key: send it as x-api-key (`modelfn keys create NAME` makes one)"),
                None => Some("the x-api-key is not the API key of a modelfn access key"),
            }
        }
        DoorAuth::Token => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or("");
            if constant_time_eq(given.as_bytes(), state.config.admin_token.as_bytes()) {
                crate::request::authenticated(started, Some("admin"));
                None
            } else {
                Some("this server requires the admin token on invocations (`Authorization: Bearer <token>`)")
            }
        }
    };
    match refused {
        None => Ok(()),
        Some(why) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", why)),
    }
}

/// Checks an `x-api-key` against the usage plans of `target`; answers the refusal
/// (403, or 429 with `Retry-After`) when the request may not go on.
pub async fn admit_key(state: &AppState, target: &str, presented: &str) -> Option<Response> {
    let started = std::time::Instant::now();
    match state.control.admit_key(target, presented).await {
        Ok(modelfn_control::plans::Admission::Allowed) => {
            let key = state.control.api_key_owner(presented).await.ok().flatten();
            crate::request::authenticated(started, key.as_deref());
            None
        }
        Ok(modelfn_control::plans::Admission::Forbidden(why)) => Some(crate::error::message(
            StatusCode::FORBIDDEN,
            &format!("Forbidden: {why}"),
        )),
        Ok(modelfn_control::plans::Admission::Throttled {
            message: why,
            retry_after,
        }) => {
            let mut r = crate::error::message(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: {why}"),
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            Some(r)
        }
        Err(e) => Some(crate::ApiError::from(e).into_response()),
    }
}
