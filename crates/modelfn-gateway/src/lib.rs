//! Every HTTP front door of modelfn, and the only crate that knows axum.
//!
//! Requests become `Invocation`s handed to the control plane (which hands them to the
//! scheduler); answers and errors become HTTP responses, errors in exactly one place
//! ([`error`]).
//!
//! - [`invoke`]: the native invoke API, `POST|GET /v1/functions/{name}/invoke`;
//! - [`admin`]: deploy, list, describe, delete under `/v1/functions`, behind the admin token;
//! - [`health`]: `/healthz` and `/readyz`.

pub mod admin;
pub mod error;
pub mod health;
pub mod invoke;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use modelfn_control::ControlPlane;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use error::ApiError;

/// Limits and secrets of the HTTP layer.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The bearer token the admin API requires.
    pub admin_token: String,
    /// Largest invocation body (Lambda's synchronous payload limit, 6 MB, by default).
    pub max_invoke_body_bytes: usize,
    /// Largest deploy upload (the package limit, 50 MB, by default).
    pub max_package_bytes: usize,
}

impl GatewayConfig {
    pub fn new(admin_token: impl Into<String>) -> Self {
        GatewayConfig {
            admin_token: admin_token.into(),
            max_invoke_body_bytes: 6 * 1024 * 1024,
            max_package_bytes: 50 * 1024 * 1024,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub control: Arc<ControlPlane>,
    pub config: Arc<GatewayConfig>,
    /// Set once the registry has been restored and the server takes traffic.
    pub ready: Arc<AtomicBool>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/v1/functions", get(admin::list).post(admin::deploy))
        .route(
            "/v1/functions/{name}",
            get(admin::describe).delete(admin::delete),
        )
        .layer(DefaultBodyLimit::max(state.config.max_package_bytes))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    let invoke = Router::new()
        .route(
            "/v1/functions/{name}/invoke",
            post(invoke::invoke_post).get(invoke::invoke_get),
        )
        .layer(DefaultBodyLimit::max(state.config.max_invoke_body_bytes));
    Router::new()
        .merge(admin)
        .merge(invoke)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(error::not_found)
        .with_state(state)
}
