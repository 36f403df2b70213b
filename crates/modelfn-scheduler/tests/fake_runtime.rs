//! The scheduler with a fake runtime under paused time: cold then warm starts, shared and
//! exclusive pools, timeouts, dead instances, init failures with backoff, START/END/REPORT,
//! keep-alive, provisioned instances, concurrency limits, queueing and the scale-up rate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use modelfn_core::{
    BoxFuture, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, LogSink,
    LogStream, Manifest, Runtime, RuntimeKind, ScalingConfig,
};
use modelfn_scheduler::rate::ScaleRate;
use modelfn_scheduler::{Scheduler, SchedulerConfig};
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
    gauge: Arc<Gauge>,
    /// Starts under way now, and the most ever at once.
    starting: Arc<Gauge>,
}

/// Invocations running now, and the most ever at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

struct Echo {
    dead: AtomicBool,
    gauge: Arc<Gauge>,
}

impl Runtime for Fake {
    fn pool_kind(&self) -> modelfn_core::PoolKind {
        if self.shared {
            modelfn_core::PoolKind::Shared
        } else {
            modelfn_core::PoolKind::Exclusive
        }
    }

    fn start(
        &self,
        _spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let n = self.starts.fetch_add(1, Ordering::SeqCst);
            let now = self.starting.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.starting.max.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.starting.now.fetch_sub(1, Ordering::SeqCst);
            if n < self.fail_first_starts {
                return Err(InvokeError::init("model is broken"));
            }
            Ok(Arc::new(Echo {
                dead: AtomicBool::new(false),
                gauge: self.gauge.clone(),
            }) as Arc<dyn Instance>)
        })
    }
}

impl Instance for Echo {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move {
            if &inv.body[..] == b"bad" {
                return Err(InvokeError::InvalidInput("not a number of ms".into()));
            }
            if &inv.body[..] == b"die" {
                self.dead.store(true, Ordering::SeqCst);
                return Err(InvokeError::Function(modelfn_core::FunctionError::new(
                    "Runtime.ExitError",
                    "exited",
                )));
            }
            let ms: u64 = std::str::from_utf8(&inv.body).unwrap().parse().unwrap();
            let now = self.gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.gauge.max.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.gauge.now.fetch_sub(1, Ordering::SeqCst);
            Ok(InvocationOutput::new(inv.body, "text/plain"))
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
        tuning: Default::default(),
        credentials: None,
        model: None,
    })
}

struct Setup {
    s: Arc<Scheduler>,
    starts: Arc<AtomicUsize>,
    logs: Arc<Recorder>,
    gauge: Arc<Gauge>,
    starting: Arc<Gauge>,
}

fn setup(fail_first_starts: usize, shared: bool, timeout_ms: u64) -> Setup {
    setup_with(
        fail_first_starts,
        shared,
        timeout_ms,
        ScalingConfig::default(),
        SchedulerConfig::default(),
    )
}

fn setup_with(
    fail_first_starts: usize,
    shared: bool,
    timeout_ms: u64,
    scaling: ScalingConfig,
    config: SchedulerConfig,
) -> Setup {
    let starts = Arc::new(AtomicUsize::new(0));
    let gauge = Arc::new(Gauge::default());
    let starting = Arc::new(Gauge::default());
    let fake = Fake {
        starts: starts.clone(),
        fail_first_starts,
        shared,
        gauge: gauge.clone(),
        starting: starting.clone(),
    };
    let mut rt: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    rt.insert(RuntimeKind::Onnx, Arc::new(fake));
    let logs = Arc::new(Recorder::default());
    let s = Arc::new(Scheduler::with_config(
        rt,
        Arc::new(modelfn_telemetry::LambdaLines::new(logs.clone())),
        config,
    ));
    s.install(spec(timeout_ms), scaling).unwrap();
    Setup {
        s,
        starts,
        logs,
        gauge,
        starting,
    }
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
            st.state.as_str(),
            st.instances,
            st.invocations,
            st.cold_starts,
            st.errors
        ),
        ("warm", 1, 3, 1, 0)
    );
    assert!(st.last_init_duration_ms.unwrap() >= 5.0);
    // The caller's bad input is not the function failing.
    assert!(s.invoke("f", inv("bad")).await.is_err());
    let st = s.stats("f").unwrap();
    assert_eq!((st.invocations, st.errors), (4, 0));
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
    let Setup {
        s, starts, logs, ..
    } = setup(0, false, 100);
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
    assert!(s.validate(spec(3000), None).await.is_err());
    assert!(s.validate(spec(3000), None).await.is_ok());
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert!(s.spec("f").is_none());
}

fn scaling(f: impl FnOnce(&mut ScalingConfig)) -> ScalingConfig {
    let mut c = ScalingConfig::default();
    f(&mut c);
    c
}

#[tokio::test(start_paused = true)]
async fn idle_instances_stop_after_their_keep_alive_and_the_next_call_is_cold() {
    let cfg = scaling(|c| c.keep_alive = Some(Duration::from_secs(2)));
    for shared in [true, false] {
        let Setup { s, starts, .. } =
            setup_with(0, shared, 3000, cfg.clone(), SchedulerConfig::default());
        s.invoke("f", inv("1")).await.unwrap();
        tokio::time::advance(Duration::from_millis(1500)).await;
        s.reap_once();
        assert_eq!(
            s.stats("f").unwrap().instances,
            1,
            "shared={shared}: still within keep-alive"
        );
        tokio::time::advance(Duration::from_millis(1000)).await;
        s.reap_once();
        let st = s.stats("f").unwrap();
        assert_eq!(
            (st.instances, st.state.as_str()),
            (0, "cold"),
            "shared={shared}: scaled to zero"
        );
        assert!(s.invoke("f", inv("1")).await.unwrap().1.cold_start);
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn provisioned_instances_start_at_install_stay_and_are_not_cold() {
    let cfg = scaling(|c| {
        c.provisioned_concurrency = Some(2);
        c.keep_alive = Some(Duration::from_secs(1));
    });
    let Setup { s, starts, .. } = setup_with(0, false, 3000, cfg, SchedulerConfig::default());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let st = s.stats("f").unwrap();
    assert_eq!(
        (st.instances, st.provisioned_instances, st.cold_starts),
        (2, 2, 0)
    );
    let (a, b, c) = tokio::join!(
        s.invoke("f", inv("10")),
        s.invoke("f", inv("10")),
        s.invoke("f", inv("10"))
    );
    let colds = [
        a.unwrap().1.cold_start,
        b.unwrap().1.cold_start,
        c.unwrap().1.cold_start,
    ];
    assert_eq!(
        colds.iter().filter(|c| **c).count(),
        1,
        "two provisioned calls are warm, the third starts one"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    s.reap_once();
    let st = s.stats("f").unwrap();
    assert_eq!(
        (st.instances, st.provisioned_instances),
        (2, 2),
        "the on-demand one stopped, the provisioned stay"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    // Raising provisioned concurrency starts more at once; lowering it lets the extra ones
    // go after their keep-alive.
    s.configure("f", scaling(|c| c.provisioned_concurrency = Some(3)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.stats("f").unwrap().provisioned_instances, 3);
    s.configure(
        "f",
        scaling(|c| {
            c.provisioned_concurrency = Some(1);
            c.keep_alive = Some(Duration::from_secs(1));
        }),
    )
    .unwrap();
    s.reap_once();
    tokio::time::advance(Duration::from_secs(2)).await;
    s.reap_once();
    let st = s.stats("f").unwrap();
    assert_eq!((st.instances, st.provisioned_instances), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn provisioned_ramps_are_bounded_and_cancellable() {
    // Code functions: no more provisioned than the process guard allows.
    let Setup { s, starts, .. } = setup(0, false, 3000);
    let e = s
        .configure("f", scaling(|c| c.provisioned_concurrency = Some(1000)))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("more than this function may run at once (64)"),
        "{e}"
    );
    // A ramp of 60 (5 ms a start), cancelled after about ten.
    s.configure("f", scaling(|c| c.provisioned_concurrency = Some(60)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(52)).await;
    s.configure("f", scaling(|c| c.provisioned_concurrency = Some(0)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = starts.load(Ordering::SeqCst);
    assert!(
        (9..=12).contains(&started),
        "{started} starts after the ramp was cancelled"
    );
    // Deleting the function stops a ramp too.
    s.configure("f", scaling(|c| c.provisioned_concurrency = Some(60)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(12)).await;
    s.remove("f");
    let at_remove = starts.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(starts.load(Ordering::SeqCst) <= at_remove + 1);
}

#[tokio::test(start_paused = true)]
async fn reserved_concurrency_queues_then_refuses_by_deadline() {
    let cfg = scaling(|c| c.reserved_concurrency = Some(2));
    let Setup { s, gauge, .. } = setup_with(0, false, 1000, cfg, SchedulerConfig::default());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let s = s.clone();
        set.spawn(async move { s.invoke("f", inv("600")).await });
    }
    let (mut ok, mut throttled) = (0, 0);
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(InvokeError::Throttled { retry_after, .. }) => {
                assert!(retry_after >= Duration::from_secs(1));
                throttled += 1
            }
            Err(e) => panic!("{e}"),
        }
    }
    // Two run at once; two more wait 600 ms and run; the fifth would wait 1200 ms > 1000 ms.
    assert_eq!((ok, throttled), (4, 1));
    assert_eq!(
        gauge.max.load(Ordering::SeqCst),
        2,
        "never more than the reserved concurrency"
    );
    assert_eq!(s.stats("f").unwrap().throttles, 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_cannot_start_before_its_deadline_is_refused_at_once() {
    let cfg = scaling(|c| c.reserved_concurrency = Some(1));
    let Setup { s, .. } = setup_with(0, false, 1000, cfg, SchedulerConfig::default());
    s.invoke("f", inv("600")).await.unwrap(); // learns a 600 ms mean
    let (first, second, third) = {
        let (a, b, c) = (s.clone(), s.clone(), s.clone());
        let t1 = tokio::spawn(async move { a.invoke("f", inv("600")).await });
        tokio::task::yield_now().await;
        let t2 = tokio::spawn(async move { b.invoke("f", inv("600")).await });
        tokio::task::yield_now().await;
        let t0 = tokio::time::Instant::now();
        let r3 = c.invoke("f", inv("600")).await;
        assert_eq!(t0.elapsed(), Duration::ZERO, "refused without waiting");
        (t1.await.unwrap(), t2.await.unwrap(), r3)
    };
    assert!(
        first.is_ok() && second.is_ok(),
        "the one ahead waited 600 ms and ran"
    );
    let e = third.unwrap_err();
    assert!(
        matches!(e, InvokeError::Throttled { .. })
            && e.to_string().contains("could not start before its timeout"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    let config = SchedulerConfig {
        queue_depth: 1,
        ..SchedulerConfig::default()
    };
    let Setup { s, .. } = setup_with(
        0,
        false,
        10_000,
        scaling(|c| c.reserved_concurrency = Some(1)),
        config,
    );
    let (a, b) = (s.clone(), s.clone());
    let t1 = tokio::spawn(async move { a.invoke("f", inv("100")).await });
    tokio::task::yield_now().await;
    let t2 = tokio::spawn(async move { b.invoke("f", inv("100")).await });
    tokio::task::yield_now().await;
    let e = s.invoke("f", inv("100")).await.unwrap_err();
    assert!(e.to_string().contains("queue is full"), "{e}");
    assert!(t1.await.unwrap().is_ok() && t2.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_burst_starts_a_few_processes_per_core_at_once_and_every_call_is_served() {
    let config = SchedulerConfig {
        starts_per_core: 1,
        ..SchedulerConfig::default()
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let Setup { s, starting, .. } = setup_with(0, false, 3000, ScalingConfig::default(), config);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let s = s.clone();
        set.spawn(async move { s.invoke("f", inv("100")).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    let most = starting.max.load(Ordering::SeqCst);
    assert!(
        (1..=cores).contains(&most),
        "{most} starts at once, at most {cores} (1 per core)"
    );
}

#[tokio::test(start_paused = true)]
async fn scale_up_is_limited_by_the_rate_and_waiting_calls_take_returned_instances() {
    let config = SchedulerConfig {
        scale_rate: ScaleRate {
            burst: 2,
            per_interval: 1,
            interval: Duration::from_secs(10),
        },
        ..SchedulerConfig::default()
    };
    let Setup { s, starts, .. } = setup_with(0, false, 3000, ScalingConfig::default(), config);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let s = s.clone();
        set.spawn(async move { s.invoke("f", inv("100")).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        starts.load(Ordering::SeqCst),
        2,
        "a burst of 2 starts, then reuse"
    );
}

#[tokio::test(start_paused = true)]
async fn the_server_wide_limit_holds_across_functions() {
    let config = SchedulerConfig {
        max_concurrency: 3,
        ..SchedulerConfig::default()
    };
    let Setup { s, gauge, .. } = setup_with(0, false, 5000, ScalingConfig::default(), config);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let s = s.clone();
        set.spawn(async move { s.invoke("f", inv("100")).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(gauge.max.load(Ordering::SeqCst), 3);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the arrivals and run times, no more invocations run at once than the
        /// reserved concurrency, and every call either runs or is refused with 429.
        #[test]
        fn concurrency_limits_are_never_exceeded(
            limit in 1u32..6,
            shared in any::<bool>(),
            arrivals in proptest::collection::vec((0u64..300, 1u64..400), 1..40),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async move {
                let cfg = scaling(|c| c.reserved_concurrency = Some(limit));
                let Setup { s, gauge, .. } = setup_with(0, shared, 1000, cfg, SchedulerConfig::default());
                let mut set = tokio::task::JoinSet::new();
                for (at, run) in arrivals.clone() {
                    let s = s.clone();
                    set.spawn(async move {
                        tokio::time::sleep(Duration::from_millis(at)).await;
                        s.invoke("f", inv(&run.to_string())).await
                    });
                }
                let mut done = 0;
                while let Some(r) = set.join_next().await {
                    match r.unwrap() {
                        Ok(_) | Err(InvokeError::Throttled { .. }) => done += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                assert_eq!(done, arrivals.len());
                assert!(gauge.max.load(Ordering::SeqCst) <= limit as usize);
                assert_eq!(s.stats("f").unwrap().in_flight, 0);
            });
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_frees_its_slot_and_its_process_is_not_reused() {
    let cfg = scaling(|c| c.reserved_concurrency = Some(1));
    let Setup { s, starts, .. } = setup_with(0, false, 5000, cfg, SchedulerConfig::default());
    let s2 = s.clone();
    let running = tokio::spawn(async move { s2.invoke("f", inv("3000")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.stats("f").unwrap().in_flight, 1);
    running.abort(); // the client went away
    let _ = running.await;
    let st = s.stats("f").unwrap();
    assert_eq!(
        (st.in_flight, st.instances),
        (0, 0),
        "slot freed, the instance dropped"
    );
    let t0 = tokio::time::Instant::now();
    let (_, r) = s.invoke("f", inv("10")).await.unwrap();
    assert!(
        r.cold_start && r.queue_wait < Duration::from_millis(10),
        "admitted at once on a fresh instance"
    );
    assert!(t0.elapsed() < Duration::from_millis(100));
    assert_eq!(starts.load(Ordering::SeqCst), 2);
}
