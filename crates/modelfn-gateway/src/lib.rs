//! Every HTTP front door of modelfn, and the only crate that knows axum.
//!
//! Requests become `Invocation`s handed to the scheduler (the control plane is never on
//! the request path); answers and errors become HTTP responses, errors in exactly one
//! place per protocol ([`error`] for the native ones).
//!
//! - [`serve`]: the bounded front door (connections, the header timeout, shutdown);
//! - [`front`]: where every door resolves what a caller named to the version it runs;
//! - [`invoke`]: the native invoke API, `POST|GET /v1/functions/{name}/invoke`, with
//!   [`door_auth`] deciding who may call the open doors;
//! - [`aws_lambda`], [`aws_sagemaker`] (SigV4 in [`aws`] and [`sigv4`]), [`oip`],
//!   [`urls`], [`apis`]: the other doors; [`events`]: `Event` invocations;
//! - [`sandbox`]: modelfn's API as a function sees it from inside its sandbox;
//! - [`admin`]: the admin API, one module per resource (versions and aliases in
//!   `admin::aliases`), behind the admin token;
//! - [`health`] and [`openapi`].

// The OpenAPI document is one `json!` literal, deeper than the default limit.
#![recursion_limit = "256"]

pub mod admin;
pub mod apis;
pub mod aws;
pub mod aws_lambda;
pub mod aws_provisioned;
pub mod aws_sagemaker;
pub mod aws_sagemaker_endpoints;
mod body;
pub mod dashboard;
pub mod door_auth;
pub mod error;
pub mod events;
pub mod fanout;
pub mod front;
pub mod health;
pub mod http_metrics;
pub mod invoke;
pub mod linger;
pub mod metrics;
pub mod objects;
pub mod oip;
pub mod openapi;
pub mod payload_v2;
mod repoll;
pub mod request;
pub mod sandbox;
pub mod serve;
pub mod sigv4;
pub mod streams;
pub mod urls;

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
    /// Largest body of a map (its items, one per line; 64 MB by default).
    pub max_map_input_bytes: usize,
    /// Largest deploy upload (the package limit, 50 MB, by default).
    pub max_package_bytes: usize,
    /// Largest layer upload (250 MB by default).
    pub max_layer_bytes: usize,
    /// Accept unsigned requests on the AWS protocols (off by default; for local use).
    pub aws_allow_unsigned: bool,
    /// The region AWS-protocol requests must be signed for.
    pub aws_region: String,
    /// What the native, OIP and KServe doors require of callers.
    pub invoke_auth: modelfn_core::DoorAuth,
    /// A bearer token for `GET /metrics` besides the admin token.
    pub metrics_token: Option<String>,
}

impl GatewayConfig {
    pub fn new(admin_token: impl Into<String>) -> Self {
        GatewayConfig {
            admin_token: admin_token.into(),
            max_invoke_body_bytes: 6 * 1024 * 1024,
            max_map_input_bytes: 64 * 1024 * 1024,
            max_package_bytes: 50 * 1024 * 1024,
            max_layer_bytes: 250 * 1024 * 1024,
            aws_allow_unsigned: false,
            aws_region: "us-east-1".into(),
            invoke_auth: modelfn_core::DoorAuth::None,
            metrics_token: None,
        }
    }
}

/// What every handler can reach. Handlers get it by `State`, which clones it per
/// request: one `Arc` (one atomic increment), whatever it holds.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl AppState {
    pub fn new(context: AppContext) -> Self {
        AppState(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppContext;
    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// The shared state behind [`AppState`].
pub struct AppContext {
    /// Desired state: deploys, keys, plans, URLs, APIs. Never on the request path.
    pub control: Arc<ControlPlane>,
    /// What serves: every door invokes through it.
    pub scheduler: Arc<modelfn_scheduler::Scheduler>,
    pub config: Arc<GatewayConfig>,
    pub logs: Arc<modelfn_telemetry::LogStore>,
    /// Every invocation's record (`None` when `records = false`).
    pub records: Option<Arc<modelfn_telemetry::RecordStore>>,
    /// The traces kept (`None` when `traces = false`).
    pub tracer: Option<Arc<modelfn_telemetry::Tracer>>,
    /// Compiled APIs by name, kept by the control plane's reconciler.
    pub apis: Arc<apis::CompiledApis>,
    /// Set once the registry has been restored and the server takes traffic.
    pub ready: Arc<AtomicBool>,
    /// Asynchronous invocations: the durable queue and its workers' state.
    pub events: Arc<events::AsyncEvents>,
    /// Stream sources: the shards this node reads, with their counters.
    pub streams: Arc<modelfn_streams::StreamSources>,
    /// Buckets of objects (their writes and deletes trigger functions).
    pub objects: Arc<objects::store::BucketStore>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let token = axum::middleware::from_fn_with_state(state.clone(), admin::require_token);
    // The native invoke API checks its callers itself (door_auth::admit), more cheaply.
    let door_auth = axum::middleware::from_fn_with_state(state.clone(), door_auth::require);
    let admin = Router::new()
        .route(
            "/v1/functions",
            get(admin::functions::list).post(admin::functions::deploy),
        )
        .route(
            "/v1/functions/{name}",
            get(admin::functions::describe).delete(admin::functions::delete),
        )
        .route("/v1/functions/{name}/logs", get(admin::logs::logs))
        .route(
            "/v1/functions/{name}/invocations",
            get(admin::invocations::list),
        )
        .route("/v1/cost", get(admin::invocations::cost))
        .route("/v1/cluster", get(admin::cluster::status))
        .route("/v1/async", get(admin::async_events::depths))
        .route("/v1/streams", get(streams::list))
        .route("/v1/buckets", get(objects::buckets))
        .route("/v1/async/{request_id}", get(admin::async_events::status))
        .route("/v1/dlq", get(admin::async_events::dead))
        .route("/v1/dlq/redrive", post(admin::async_events::redrive))
        .route("/v1/traces", get(admin::traces::list))
        .route("/v1/traces/{request_id}", get(admin::traces::show))
        .route("/v1/dashboard/series", get(dashboard::series))
        .route("/v1/stats", get(metrics::stats))
        .route(
            "/v1/functions/{name}/versions",
            get(admin::aliases::list_versions),
        )
        .route(
            "/v1/functions/{name}/versions/{version}",
            axum::routing::delete(admin::aliases::delete_version),
        )
        .route(
            "/v1/functions/{name}/aliases",
            get(admin::aliases::list_aliases),
        )
        .route(
            "/v1/functions/{name}/aliases/{alias}",
            axum::routing::put(admin::aliases::set_alias).delete(admin::aliases::delete_alias),
        )
        .route(
            "/v1/functions/{name}/aliases/{alias}/shadow",
            get(admin::aliases::shadow_report),
        )
        .route(
            "/v1/functions/{name}/provisioned",
            get(admin::provisioned::list),
        )
        .route(
            "/v1/functions/{name}/provisioned/{qualifier}",
            get(admin::provisioned::get)
                .put(admin::provisioned::set)
                .delete(admin::provisioned::delete),
        )
        .route(
            "/v1/functions/{name}/config",
            axum::routing::put(admin::config::configure),
        )
        .route(
            "/v1/functions/{name}/url",
            axum::routing::put(admin::urls::create_url).delete(admin::urls::delete_url),
        )
        .route(
            "/v1/functions/{name}/events",
            get(admin::events::list_events),
        )
        .route(
            "/v1/functions/{name}/events/{event}",
            get(admin::events::get_event).put(admin::events::save_event),
        )
        .route_layer(token.clone());
    let layers = Router::new()
        .route("/v1/layers", get(admin::layers::list_layers))
        .route("/v1/layers/{name}", post(admin::layers::publish_layer))
        .route("/v1/store/models", get(admin::models::list_models))
        .route(
            "/v1/store/models/{name}",
            get(admin::models::get_model).put(admin::models::put_model),
        )
        .route(
            "/v1/store/models/{name}/rollback",
            post(admin::models::rollback_model),
        )
        .route_layer(token);
    let invoke = Router::new().route(
        "/v1/functions/{name}/invoke",
        post(invoke::invoke_post).get(invoke::invoke_get),
    );
    let invoke_async = Router::new().route(
        "/v1/functions/{name}/invoke-async",
        post(admin::async_events::invoke_async),
    );
    let buckets = Router::new()
        .route("/v1/buckets/{bucket}", get(objects::list))
        .route(
            "/v1/buckets/{bucket}/{*key}",
            get(objects::get).put(objects::put).delete(objects::delete),
        );
    let map = Router::new().route("/v1/functions/{name}/map", post(fanout::map));
    let lambda = Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(aws_lambda::invoke),
        )
        .route(
            "/2015-03-31/functions/{name}",
            get(aws_lambda::get_function),
        )
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            get(aws_provisioned::get)
                .put(aws_provisioned::put)
                .delete(aws_provisioned::delete),
        )
        .route("/2015-03-31/functions/", get(aws_lambda::list_functions))
        .route("/2015-03-31/functions", get(aws_lambda::list_functions))
        .route(
            "/endpoints/{name}/invocations",
            post(aws_sagemaker::invoke_endpoint),
        )
        .route("/", post(aws_sagemaker_endpoints::call));
    let keys = Router::new()
        .route(
            "/v1/keys",
            get(admin::keys::list_keys).post(admin::keys::create_key),
        )
        .route(
            "/v1/keys/{id}",
            axum::routing::delete(admin::keys::delete_key),
        )
        .route("/v1/keys/{id}/usage", get(admin::keys::key_usage))
        .route("/v1/plans", get(admin::plans::list_plans))
        .route(
            "/v1/plans/{name}",
            axum::routing::put(admin::plans::save_plan).delete(admin::plans::delete_plan),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    let oip = Router::new()
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2", get(oip::server_metadata))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::model_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::model_version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::infer_version),
        )
        .route("/v1/models", get(oip::v1_list))
        .route(
            "/v1/models/{target}",
            get(oip::v1_model).post(oip::v1_predict),
        )
        .route_layer(door_auth);
    let api_routes = Router::new()
        .route("/apis/{api}/{stage}", axum::routing::any(apis::serve::call))
        .route(
            "/apis/{api}/{stage}/",
            axum::routing::any(apis::serve::call),
        )
        .route(
            "/apis/{api}/{stage}/{*path}",
            axum::routing::any(apis::serve::call),
        );
    let api_admin = Router::new()
        .route(
            "/v1/apis",
            get(admin::apis::list_apis).post(admin::apis::apply_api),
        )
        .route(
            "/v1/apis/{name}",
            axum::routing::delete(admin::apis::delete_api),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    let urls = Router::new()
        .route("/urls/{function}", axum::routing::any(urls::call))
        .route("/urls/{function}/", axum::routing::any(urls::call))
        .route("/urls/{function}/{*path}", axum::routing::any(urls::call));
    Router::new()
        .merge(admin)
        .merge(api_routes)
        .merge(api_admin)
        .merge(urls)
        .merge(oip)
        .merge(lambda)
        .merge(keys)
        .merge(layers)
        .merge(invoke)
        .merge(invoke_async)
        .merge(map)
        .merge(buckets)
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(metrics::serve))
        .route("/dashboard", get(dashboard::page))
        .route("/readyz", get(health::readyz))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state)
}
