//! The scheduler with a fake runtime under paused time: cold then warm starts, shared and
//! exclusive pools, timeouts, dead instances, init failures with backoff, and the
//! START/END/REPORT lines.

use bytes::Bytes;
use modelfn_core::{
    BoxFuture, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, LogSink,
    LogStream, Manifest, Runtime, RuntimeKind,
};
use modelfn_scheduler::Scheduler;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Starts instances that sleep for the number of ms in the body, then echo it; the body
/// `die` makes the instance unhealthy.
struct Fake {
    starts: Arc<AtomicUsize>,
    fail_first_starts: usize,
    shared: bool,
}

struct Echo {
    dead: AtomicBool,
}

impl Runtime for Fake {
    fn shared_instances(&self) -> bool {
        self.shared
    }

    fn start(
        &self,
        _spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let n = self.starts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            if n < self.fail_first_starts {
                return Err(InvokeError::init("model is broken"));
            }
            Ok(Arc::new(Echo {
                dead: AtomicBool::new(false),
            }) as Arc<dyn Instance>)
        })
    }
}

impl Instance for Echo {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move {
            if &inv.body[..] == b"die" {
                self.dead.store(true, Ordering::SeqCst);
                return Err(InvokeError::Function(modelfn_core::FunctionError::new(
                    "Runtime.ExitError",
                    "exited",
                )));
            }
            let ms: u64 = std::str::from_utf8(&inv.body).unwrap().parse().unwrap();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(InvocationOutput {
                body: inv.body,
                content_type: "text/plain",
            })
        })
    }

    fn healthy(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }

    fn max_memory_used_mb(&self) -> Option<u64> {
        Some(42)
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl LogSink for Recorder {
    fn line(&self, _f: &str, _id: Option<&str>, _s: LogStream, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
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
        layers: vec![],
    })
}

struct Setup {
    s: Arc<Scheduler>,
    starts: Arc<AtomicUsize>,
    logs: Arc<Recorder>,
}

fn setup(fail_first_starts: usize, shared: bool, timeout_ms: u64) -> Setup {
    let starts = Arc::new(AtomicUsize::new(0));
    let fake = Fake {
        starts: starts.clone(),
        fail_first_starts,
        shared,
    };
    let mut rt: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    rt.insert(RuntimeKind::Onnx, Arc::new(fake));
    let logs = Arc::new(Recorder::default());
    let s = Arc::new(Scheduler::new(rt, logs.clone()));
    s.install(spec(timeout_ms)).unwrap();
    Setup { s, starts, logs }
}

fn inv(body: &str) -> Invocation {
    Invocation::new("req", Bytes::from(body.to_string()), None)
}

#[tokio::test(start_paused = true)]
async fn shared_pool_starts_once_then_stays_warm() {
    let Setup { s, starts, .. } = setup(0, true, 3000);
    assert_eq!(s.stats("f").unwrap().state, "cold");
    let (a, b) = tokio::join!(s.invoke("f", inv("1")), s.invoke("f", inv("1")));
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
    let (out, warm) = s.invoke("f", inv("0")).await.unwrap();
    assert_eq!(out.body, Bytes::from("0"));
    assert!(!warm.cold_start && warm.init_duration.is_none());
    let st = s.stats("f").unwrap();
    assert_eq!(
        (
            st.state,
            st.instances,
            st.invocations,
            st.cold_starts,
            st.errors
        ),
        ("warm", 1, 3, 1, 0)
    );
    assert!(st.last_init_duration_ms.unwrap() >= 5.0);
}

#[tokio::test(start_paused = true)]
async fn exclusive_pool_runs_one_invocation_per_instance_and_reuses_idle_ones() {
    let Setup { s, starts, .. } = setup(0, false, 3000);
    let (a, b, c) = tokio::join!(
        s.invoke("f", inv("10")),
        s.invoke("f", inv("10")),
        s.invoke("f", inv("10"))
    );
    assert!(a.unwrap().1.cold_start && b.unwrap().1.cold_start && c.unwrap().1.cold_start);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "three concurrent calls, three instances"
    );
    assert_eq!(s.stats("f").unwrap().instances, 3);
    let (a, b) = tokio::join!(s.invoke("f", inv("10")), s.invoke("f", inv("10")));
    assert!(!a.unwrap().1.cold_start && !b.unwrap().1.cold_start);
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "idle instances are reused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_instance_is_dropped_and_the_next_call_gets_a_fresh_one() {
    let Setup { s, starts, logs } = setup(0, false, 100);
    let e = s.invoke("f", inv("500")).await.unwrap_err();
    assert_eq!(e.to_string(), "Task timed out after 0.10 seconds");
    assert_eq!(
        s.stats("f").unwrap().instances,
        0,
        "the timed-out instance is gone"
    );
    let (_, r) = s.invoke("f", inv("10")).await.unwrap();
    assert!(r.cold_start, "a fresh instance");
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert_eq!(s.stats("f").unwrap().errors, 1);
    let lines = logs.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Task timed out after 0.10 seconds")),
        "{lines:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_instance_is_replaced() {
    let Setup { s, starts, .. } = setup(0, false, 3000);
    s.invoke("f", inv("1")).await.unwrap();
    assert!(s.invoke("f", inv("die")).await.is_err());
    let (_, r) = s.invoke("f", inv("1")).await.unwrap();
    assert!(r.cold_start);
    assert_eq!(starts.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn init_failures_are_remembered_with_backoff_then_retried() {
    let Setup { s, starts, .. } = setup(2, false, 3000);
    let e = s.invoke("f", inv("0")).await.unwrap_err();
    assert_eq!(e, InvokeError::init("model is broken"));
    // Within the backoff: the same error, nothing started.
    assert_eq!(s.invoke("f", inv("0")).await.unwrap_err(), e);
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_millis(1100)).await;
    assert!(
        s.invoke("f", inv("0")).await.is_err(),
        "second start fails too"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_millis(1100)).await;
    assert_eq!(
        s.invoke("f", inv("0")).await.unwrap_err(),
        e,
        "the backoff doubled to 2 s"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_millis(1000)).await;
    assert!(s.invoke("f", inv("0")).await.unwrap().1.cold_start);
}

#[tokio::test(start_paused = true)]
async fn start_end_report_lines_with_init_duration_on_the_cold_start_only() {
    let Setup { s, logs, .. } = setup(0, false, 3000);
    s.invoke("f", inv("3")).await.unwrap();
    s.invoke("f", inv("3")).await.unwrap();
    let lines = logs.0.lock().unwrap().clone();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], "START RequestId: req Version: 1");
    assert_eq!(lines[1], "END RequestId: req");
    assert!(lines[2].starts_with("REPORT RequestId: req\tDuration: 3.00 ms") && lines[2].contains("\tBilled Duration: 3 ms\tMemory Size: 128 MB\tMax Memory Used: 42 MB\tInit Duration: 5."), "{}", lines[2]);
    assert!(
        lines[5].starts_with("REPORT") && !lines[5].contains("Init Duration"),
        "{}",
        lines[5]
    );
}

#[tokio::test]
async fn unknown_and_removed_functions_are_not_found() {
    let Setup { s, .. } = setup(0, true, 3000);
    assert_eq!(
        s.invoke("nope", inv("0")).await.unwrap_err(),
        InvokeError::FunctionNotFound("nope".into())
    );
    assert!(s.remove("f"));
    assert!(matches!(
        s.invoke("f", inv("0")).await,
        Err(InvokeError::FunctionNotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn validate_starts_an_instance_without_serving_it() {
    let Setup { s, starts, .. } = setup(1, true, 3000);
    s.remove("f");
    assert!(s.validate(spec(3000)).await.is_err());
    assert!(s.validate(spec(3000)).await.is_ok());
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert!(s.spec("f").is_none());
}

#[tokio::test(start_paused = true)]
async fn an_exclusive_pool_is_capped_and_waiting_calls_give_up_at_their_timeout() {
    use modelfn_scheduler::MAX_EXCLUSIVE_INSTANCES;
    let Setup { s, starts, .. } = setup(0, false, 1000);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..(2 * MAX_EXCLUSIVE_INSTANCES + 1) {
        let s = s.clone();
        set.spawn(async move { s.invoke("f", inv("600")).await });
    }
    let (mut ok, mut throttled) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(InvokeError::Throttled { .. }) => throttled += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Two waves of 600 ms fit in nobody's 1 s timeout but the last caller's wait.
    assert_eq!((ok, throttled), (2 * MAX_EXCLUSIVE_INSTANCES, 1));
    assert_eq!(
        starts.load(Ordering::SeqCst),
        MAX_EXCLUSIVE_INSTANCES,
        "the second wave reused idle instances"
    );
}
