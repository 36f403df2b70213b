//! The router without a socket (`tower::ServiceExt::oneshot`): how each outcome of an
//! invocation becomes an HTTP response, with a fake runtime standing in for models.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt;
use modelfn_control::ControlPlane;
use modelfn_core::{
    BoxFuture, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, Runtime,
    RuntimeKind,
};
use modelfn_gateway::{router, AppContext, AppState, GatewayConfig};
use modelfn_registry::{CodeCache, LocalBlobStore, PackageLimits, SqlMetadataStore};
use modelfn_scheduler::Scheduler;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Answers according to the body: `sleep`, `throttle`, `fail`, or echoes it.
struct Fake;
struct FakeInstance;

impl Runtime for Fake {
    fn start(
        &self,
        _spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async { Ok(Arc::new(FakeInstance) as Arc<dyn Instance>) })
    }
}

impl Instance for FakeInstance {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move {
            match &inv.body[..] {
                b"sleep" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(InvocationOutput::new(inv.body, "text/plain"))
                }
                b"throttle" => Err(InvokeError::Throttled {
                    message: "slow down".into(),
                    retry_after: Duration::from_secs(2),
                }),
                b"fail" => Err(InvokeError::Function(modelfn_core::FunctionError::new(
                    "ModelError",
                    "boom",
                ))),
                _ => Ok(InvocationOutput::new(inv.body, "application/json")),
            }
        })
    }
}

async fn app(dir: &std::path::Path) -> axum::Router {
    let meta = SqlMetadataStore::open(&dir.join("m.db")).await.unwrap();
    let blobs = Arc::new(LocalBlobStore::new(dir.join("blobs")).unwrap());
    let code = CodeCache::new(dir.join("code"), blobs, PackageLimits::default()).unwrap();
    let mut rt: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    rt.insert(RuntimeKind::Onnx, Arc::new(Fake));
    let logs = Arc::new(modelfn_telemetry::LogStore::new(None).unwrap());
    let scheduler = Arc::new(Scheduler::new(
        rt,
        Arc::new(modelfn_telemetry::LambdaLines::new(logs.clone())),
    ));
    let control = Arc::new(ControlPlane::new(
        Arc::new(meta),
        Arc::new(code),
        scheduler.clone(),
        modelfn_control::Limits::default(),
        modelfn_control::secrets::Sealer::new([7; 32]),
    ));
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("modelfn.toml"), "name = \"f\"\nruntime = \"onnx\"\ntimeout_ms = 200\n[model]\nfile = \"m.onnx\"\ninputs = [\"a\"]\n").unwrap();
    std::fs::write(pkg.join("m.onnx"), b"fake").unwrap();
    control
        .deploy(
            modelfn_registry::package::pack_dir(&pkg).unwrap().into(),
            None,
            true,
        )
        .await
        .unwrap();
    let sql = Arc::new(
        modelfn_queue::SqlQueue::open(&dir.join("queue.db"))
            .await
            .unwrap(),
    );
    let queue: Arc<dyn modelfn_queue::InvocationQueue> = sql.clone();
    router(AppState::new(AppContext {
        control,
        scheduler: scheduler.clone(),
        config: Arc::new(GatewayConfig::new("secret")),
        logs,
        records: None,
        tracer: None,
        apis: Default::default(),
        ready: Arc::new(AtomicBool::new(true)),
        events: modelfn_gateway::events::AsyncEvents::new(queue.clone(), Default::default()),
        streams: modelfn_streams::StreamSources::new(scheduler, queue, sql),
        objects: Arc::new(
            modelfn_gateway::objects::store::BucketStore::new(dir.join("buckets"), 1024).unwrap(),
        ),
    }))
}

async fn post(
    app: &axum::Router,
    body: &'static str,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let req = Request::post("/v1/functions/f/invoke")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes: Bytes = body.collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, v)
}

#[tokio::test]
async fn outcomes_map_to_statuses_in_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;

    let (status, headers, body) = post(&app, r#"{"a": 1}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["a"], 1);
    assert!(headers.contains_key("x-modelfn-request-id"));
    assert_eq!(headers["x-modelfn-version"], "1");

    let (status, headers, body) = post(&app, "throttle").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["error"]["type"], "TooManyRequestsException");

    // The function's own failures answer as Lambda does: 200, a marker, its error.
    let (status, headers, body) = post(&app, "fail").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-modelfn-function-error"], "Unhandled");
    assert_eq!(
        body,
        serde_json::json!({"errorType": "ModelError", "errorMessage": "boom"})
    );

    let (status, headers, body) = post(&app, "sleep").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-modelfn-function-error"], "Unhandled");
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert_eq!(body["errorMessage"], "Task timed out after 0.20 seconds");
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let get = |auth: Option<&str>| {
        let mut b = Request::get("/v1/functions/f");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        app.clone().oneshot(b.body(Body::empty()).unwrap())
    };
    assert_eq!(get(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let resp = get(Some("Bearer nope")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        get(Some("Bearer secret")).await.unwrap().status(),
        StatusCode::OK
    );
    let resp = app
        .clone()
        .oneshot(
            Request::delete("/v1/functions/zzz")
                .header("authorization", "Bearer secret")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
