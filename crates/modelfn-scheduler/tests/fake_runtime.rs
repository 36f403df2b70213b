//! The scheduler with a fake runtime: cold then warm starts, timeouts, init failures.

use bytes::Bytes;
use modelfn_core::{
    BoxFuture, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, Manifest,
    Runtime, RuntimeKind,
};
use modelfn_scheduler::Scheduler;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Starts instances that echo the body after sleeping for the number of ms it holds.
struct Fake {
    starts: Arc<AtomicUsize>,
    fail_first_starts: usize,
}

struct Echo;

impl Runtime for Fake {
    fn start(
        &self,
        _spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let n = self.starts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            if n < self.fail_first_starts {
                return Err(InvokeError::InitFailed("model is broken".into()));
            }
            Ok(Arc::new(Echo) as Arc<dyn Instance>)
        })
    }
}

impl Instance for Echo {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move {
            let ms: u64 = std::str::from_utf8(&inv.body).unwrap().parse().unwrap();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(InvocationOutput {
                body: inv.body,
                content_type: "text/plain",
            })
        })
    }
}

fn spec(timeout_ms: u64) -> Arc<FunctionSpec> {
    let m = Manifest::from_toml(&format!(
        "name = \"f\"\nruntime = \"onnx\"\ntimeout_ms = {timeout_ms}\n[model]\nfile = \"m.onnx\"\ninputs = [\"a\"]\n"
    ))
    .unwrap();
    Arc::new(FunctionSpec {
        manifest: m,
        version: 1,
        code_dir: ".".into(),
        code_sha256: "0".repeat(64),
    })
}

fn scheduler(fail_first_starts: usize) -> (Scheduler, Arc<AtomicUsize>) {
    let starts = Arc::new(AtomicUsize::new(0));
    let fake = Fake {
        starts: starts.clone(),
        fail_first_starts,
    };
    let mut rt: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    rt.insert(RuntimeKind::Onnx, Arc::new(fake));
    (Scheduler::new(rt), starts)
}

fn inv(ms: u64) -> Invocation {
    Invocation::new("req", Bytes::from(ms.to_string()), None)
}

#[tokio::test(start_paused = true)]
async fn first_call_is_cold_then_warm_and_concurrent_first_calls_start_once() {
    let (s, starts) = scheduler(0);
    s.install(spec(3000));
    assert_eq!(s.stats("f").unwrap().state, "cold");
    let (a, b) = tokio::join!(s.invoke("f", inv(1)), s.invoke("f", inv(1)));
    let (ra, rb) = (a.unwrap().1, b.unwrap().1);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        1,
        "one cold start for concurrent first calls"
    );
    assert_eq!(
        [ra.cold_start, rb.cold_start]
            .iter()
            .filter(|c| **c)
            .count(),
        1
    );
    let (out, warm) = s.invoke("f", inv(0)).await.unwrap();
    assert_eq!(out.body, Bytes::from("0"));
    assert!(!warm.cold_start && warm.init_duration.is_none());
    let st = s.stats("f").unwrap();
    assert_eq!(
        (st.state, st.invocations, st.cold_starts, st.errors),
        ("warm", 3, 1, 0)
    );
    assert!(st.last_init_duration_ms.unwrap() >= 5.0);
}

#[tokio::test(start_paused = true)]
async fn timeout_is_enforced_and_reported_like_lambda() {
    let (s, _) = scheduler(0);
    s.install(spec(100));
    let e = s.invoke("f", inv(500)).await.unwrap_err();
    assert_eq!(e.to_string(), "Task timed out after 0.10 seconds");
    assert!(
        s.invoke("f", inv(10)).await.is_ok(),
        "the function keeps serving"
    );
    assert_eq!(s.stats("f").unwrap().errors, 1);
}

#[tokio::test(start_paused = true)]
async fn failed_init_is_reported_and_retried() {
    let (s, starts) = scheduler(1);
    s.install(spec(3000));
    let e = s.invoke("f", inv(0)).await.unwrap_err();
    assert_eq!(e, InvokeError::InitFailed("model is broken".into()));
    assert!(s.invoke("f", inv(0)).await.unwrap().1.cold_start);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_and_removed_functions_are_not_found() {
    let (s, _) = scheduler(0);
    assert_eq!(
        s.invoke("nope", inv(0)).await.unwrap_err(),
        InvokeError::FunctionNotFound("nope".into())
    );
    s.install(spec(3000));
    assert!(s.remove("f"));
    assert!(matches!(
        s.invoke("f", inv(0)).await,
        Err(InvokeError::FunctionNotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn validate_starts_an_instance_without_installing_it() {
    let (s, starts) = scheduler(1);
    assert!(s.validate(spec(3000)).await.is_err());
    assert!(s.validate(spec(3000)).await.is_ok());
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert!(s.spec("f").is_none());
}
