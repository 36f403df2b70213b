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
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use modelfn_core::{DoorAuth, FunctionCaller};
use std::sync::Arc;

pub async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.extensions().get::<Arc<FunctionCaller>>().is_some() {
        return next.run(req).await;
    }
    let function_needs = match target(req.uri().path()) {
        Target::Function(f) => state
            .control
            .scheduler()
            .spec(&f)
            .map(|s| s.manifest.access.native)
            .unwrap_or_default(),
        Target::Health => return next.run(req).await,
        Target::Other => DoorAuth::None,
    };
    let needs = state.config.invoke_auth.max(function_needs);
    let headers = req.headers();
    let refused = match needs {
        DoorAuth::None => None,
        DoorAuth::Key => {
            let presented = headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match state.control.api_key_valid(presented).await {
                Ok(true) => None,
                Ok(false) if presented.is_empty() => Some("this function requires an API key: send it as x-api-key (`modelfn keys create NAME` makes one)"),
                Ok(false) => Some("the x-api-key is not the API key of a modelfn access key"),
                Err(e) => return ApiError::from(e).into_response(),
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
                None
            } else {
                Some("this server requires the admin token on invocations (`Authorization: Bearer <token>`)")
            }
        }
    };
    match refused {
        None => next.run(req).await,
        Some(why) => ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", why).into_response(),
    }
}
