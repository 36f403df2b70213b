//! What the scheduler adds to one invocation: resolve, admit (function and server
//! permits), lease the instance, time it, report to the observer, give the lease back,
//! around an instance that answers at once. The peer in the same run is the bare
//! `block_on` of a future that does nothing, which every sample here pays too.
//!
//! Telemetry's share on the request path: the same invocation with metrics off, on (the
//! default), and on with an invocation record made and queued (the writer thread's share
//! is measured by `bench/telemetry.sh`).
//!
//! `cargo bench -p modelfn-scheduler --bench admit`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use modelfn_core::{
    BoxFuture, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, Manifest,
    PoolKind, Runtime, RuntimeKind, ScalingConfig,
};
use modelfn_scheduler::Scheduler;
use std::collections::HashMap;
use std::sync::Arc;

struct Noop(PoolKind);
struct NoopInstance;

impl Runtime for Noop {
    fn pool_kind(&self) -> PoolKind {
        self.0
    }
    fn start(
        &self,
        _spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async { Ok(Arc::new(NoopInstance) as Arc<dyn Instance>) })
    }
}

impl Instance for NoopInstance {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move { Ok(InvocationOutput::new(inv.body, "application/json")) })
    }
}

fn scheduler(kind: PoolKind) -> Arc<Scheduler> {
    with(kind, true, Arc::new(modelfn_core::observe::NoObserver))
}

fn with(
    kind: PoolKind,
    metrics: bool,
    observer: Arc<dyn modelfn_core::InvocationObserver>,
) -> Arc<Scheduler> {
    let mut rt: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    rt.insert(RuntimeKind::Onnx, Arc::new(Noop(kind)));
    let config = modelfn_scheduler::SchedulerConfig {
        metrics,
        ..Default::default()
    };
    let s = Arc::new(Scheduler::with_config(rt, observer, config));
    let manifest = Manifest::from_toml(
        "name = \"f\"\nruntime = \"onnx\"\n[model]\nfile = \"m.onnx\"\ninputs = [\"a\"]\n",
    )
    .unwrap();
    s.install(
        Arc::new(FunctionSpec {
            manifest,
            version: 1,
            code_dir: ".".into(),
            code_sha256: "0".repeat(64),
            layers: vec![],
            tuning: Default::default(),
            credentials: None,
            model: None,
        }),
        ScalingConfig::default(),
    )
    .unwrap();
    s
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let body = Bytes::from_static(b"{\"a\": 1}");
    let mut group = c.benchmark_group("scheduler");
    group.bench_function("peer: block_on of a ready future", |b| {
        b.iter(|| rt.block_on(async { std::hint::black_box(1) }))
    });
    for (name, kind) in [
        ("invoke, shared pool (models)", PoolKind::Shared),
        ("invoke, exclusive pool (processes)", PoolKind::Exclusive),
    ] {
        let s = scheduler(kind);
        rt.block_on(s.invoke("f", Invocation::new("warm", body.clone(), None)))
            .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(s.invoke("f", Invocation::new("id", body.clone(), None)))
                    .unwrap()
            })
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let store = modelfn_telemetry::RecordStore::open(dir.path(), Default::default()).unwrap();
    let recorder = Arc::new(modelfn_telemetry::Recorder::new(store.clone()));
    for (name, metrics, observer) in [
        (
            "invoke, shared pool, metrics off",
            false,
            Arc::new(modelfn_core::observe::NoObserver)
                as Arc<dyn modelfn_core::InvocationObserver>,
        ),
        (
            "invoke, shared pool, metrics and a record",
            true,
            recorder as Arc<dyn modelfn_core::InvocationObserver>,
        ),
    ] {
        let s = with(PoolKind::Shared, metrics, observer);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(s.invoke(
                    "f",
                    Invocation::new("0b7f4d7e-9a35-4a3c-9f7e-2c1d6f0e8a11", body.clone(), None),
                ))
                .unwrap()
            })
        });
    }
    drop(store);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
