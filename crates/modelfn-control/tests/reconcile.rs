//! Two nodes over one store: desired state written on one is served by the other once its
//! reconciler has seen it (deploys, configuration, URLs, plans, APIs, deletes), and a
//! node's own writes are served before they are answered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_control::plans::UsagePlan;
use modelfn_control::{ApiFollower, ApiRecord, ControlPlane, UrlAuth};
use modelfn_core::{
    BoxFuture, FunctionName, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError,
    Runtime, RuntimeKind, ScalingConfig,
};
use modelfn_registry::{CodeCache, LocalBlobStore, MetadataStore, PackageLimits};
use modelfn_scheduler::Scheduler;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
        Box::pin(async move { Ok(InvocationOutput::new(inv.body, "application/json")) })
    }
}

#[derive(Default)]
struct Apis(Mutex<Vec<String>>);

impl ApiFollower for Apis {
    fn replace_all(&self, apis: Vec<ApiRecord>) {
        *self.0.lock().unwrap() = apis.into_iter().map(|a| a.name).collect();
    }
}

struct Node {
    control: Arc<ControlPlane>,
    scheduler: Arc<Scheduler>,
    apis: Arc<Apis>,
}

/// A node: its own scheduler and code cache, the shared metadata store and blob store.
fn node(meta: Arc<dyn MetadataStore>, shared: &Path, own: &Path) -> Node {
    let mut rt: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    rt.insert(RuntimeKind::Onnx, Arc::new(Fake));
    let scheduler = Arc::new(Scheduler::new(
        rt,
        Arc::new(modelfn_core::observe::NoObserver),
    ));
    let blobs = Arc::new(LocalBlobStore::new(shared.join("blobs")).unwrap());
    let code = CodeCache::new(own.join("code"), blobs, PackageLimits::default()).unwrap();
    let control = Arc::new(ControlPlane::new(
        meta,
        Arc::new(code),
        scheduler.clone(),
        modelfn_control::Limits::default(),
        modelfn_control::secrets::Sealer::new([7; 32]),
    ));
    let apis = Arc::new(Apis::default());
    control.follow_apis(apis.clone());
    Node {
        control,
        scheduler,
        apis,
    }
}

fn package(dir: &Path, memory_mb: u32) -> bytes::Bytes {
    let pkg = dir.join(format!("pkg-{memory_mb}"));
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("modelfn.toml"),
        format!("name = \"f\"\nruntime = \"onnx\"\nmemory_mb = {memory_mb}\n[model]\nfile = \"m.onnx\"\ninputs = [\"a\"]\n"),
    )
    .unwrap();
    std::fs::write(pkg.join("m.onnx"), b"fake").unwrap();
    modelfn_registry::package::pack_dir(&pkg).unwrap().into()
}

/// A fresh store in a temporary directory (the nodes' shared blobs go there too).
async fn store() -> (tempfile::TempDir, Arc<dyn MetadataStore>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = modelfn_registry::SqlMetadataStore::open(&dir.path().join("m.db"))
        .await
        .unwrap();
    (dir, Arc::new(meta))
}

fn served_version(n: &Node) -> Option<u64> {
    n.scheduler.spec("f").map(|s| s.version)
}

#[tokio::test]
async fn what_one_node_writes_the_other_serves_after_its_pass() {
    let (dir, meta) = store().await;
    let a = node(meta.clone(), dir.path(), &dir.path().join("a"));
    let b = node(meta, dir.path(), &dir.path().join("b"));
    a.control.restore().await.unwrap();
    b.control.restore().await.unwrap();

    // A deploy is served on its own node when it is answered; on the other after a pass,
    // from code that node fetched from the blob store and unpacked itself.
    let out = a
        .control
        .deploy(package(dir.path(), 128), None, true)
        .await
        .unwrap();
    assert_eq!(out.function.version, 1);
    assert_eq!(served_version(&a), Some(1));
    assert_eq!(served_version(&b), None);
    let pass = b.control.reconcile().await.unwrap();
    assert_eq!((pass.functions, pass.failed.len()), (1, 0));
    assert_eq!(served_version(&b), Some(1));
    assert!(b
        .scheduler
        .spec("f")
        .unwrap()
        .code_dir
        .starts_with(dir.path().join("b")));

    // A second version, from the other node this time.
    b.control
        .deploy(
            package(dir.path(), 256),
            Some(FunctionName::parse("f").unwrap()),
            true,
        )
        .await
        .unwrap();
    assert_eq!(served_version(&b), Some(2));
    a.control.reconcile().await.unwrap();
    assert_eq!(served_version(&a), Some(2));
    assert_eq!(a.scheduler.spec("f").unwrap().manifest.memory_mb, 256);

    // Configuration, URL, plan and API reach the other node's caches.
    let patch = ScalingConfig {
        reserved_concurrency: Some(3),
        ..ScalingConfig::default()
    };
    a.control.configure("f", patch, false).await.unwrap();
    a.control.create_url("f", UrlAuth::Key, None).await.unwrap();
    let plan: UsagePlan = serde_json::from_str(
        r#"{"name": "p", "rate": 5, "burst": 5, "targets": ["url:f"], "keys": []}"#,
    )
    .unwrap();
    a.control.save_plan(plan).await.unwrap();
    a.control.save_api("shop", "name = \"shop\"").await.unwrap();
    assert_eq!(b.control.url("f").map(|(a, _)| a), None);
    assert!(b.control.plans().is_empty());
    let pass = b.control.reconcile().await.unwrap();
    assert_eq!(pass.functions, 1, "reconfigured, not reinstalled");
    assert_eq!(served_version(&b), Some(2));
    assert_eq!(
        b.scheduler.scaling("f").unwrap().reserved_concurrency,
        Some(3)
    );
    assert_eq!(b.control.url("f").map(|(a, _)| a), Some(UrlAuth::Key));
    assert_eq!(b.control.plans().len(), 1);
    assert_eq!(*b.apis.0.lock().unwrap(), ["shop"]);
    assert_eq!(
        *a.apis.0.lock().unwrap(),
        ["shop"],
        "the writer's own table too"
    );

    // A pass with nothing new changes nothing.
    let idle = b.control.reconcile().await.unwrap();
    assert_eq!((idle.functions, idle.generation), (0, pass.generation));

    // Deletes, too.
    a.control.delete("f").await.unwrap();
    a.control.delete_api("shop").await.unwrap();
    assert_eq!(served_version(&a), None);
    b.control.reconcile().await.unwrap();
    assert_eq!(served_version(&b), None);
    assert_eq!(b.control.url("f").map(|(a, _)| a), None);
    assert!(b.apis.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_node_started_later_loads_everything_at_its_first_pass() {
    let (dir, meta) = store().await;
    let a = node(meta.clone(), dir.path(), &dir.path().join("a"));
    a.control.restore().await.unwrap();
    a.control
        .deploy(package(dir.path(), 128), None, false)
        .await
        .unwrap();
    a.control
        .create_url("f", UrlAuth::None, None)
        .await
        .unwrap();
    let late = node(meta, dir.path(), &dir.path().join("late"));
    assert_eq!(late.control.restore().await.unwrap(), 1);
    assert_eq!(served_version(&late), Some(1));
    assert_eq!(late.control.url("f").map(|(a, _)| a), Some(UrlAuth::None));
}

#[tokio::test]
async fn an_alias_moved_on_one_node_routes_on_the_other() {
    let (dir, meta) = store().await;
    let a = node(meta.clone(), dir.path(), &dir.path().join("a"));
    let b = node(meta, dir.path(), &dir.path().join("b"));
    a.control.restore().await.unwrap();
    b.control.restore().await.unwrap();
    for mb in [128, 256] {
        a.control
            .deploy(package(dir.path(), mb), None, true)
            .await
            .unwrap();
    }
    let spec: modelfn_control::AliasSpec =
        serde_json::from_str(r#"{"routing": {"1": 100}}"#).unwrap();
    a.control
        .set_alias("f", "prod", spec, "admin")
        .await
        .unwrap();
    let prod = modelfn_core::FunctionRef::new("f", Some("prod"));
    assert_eq!(a.scheduler.resolve_ref(&prod).unwrap().spec().version, 1);
    assert!(b.scheduler.resolve_ref(&prod).is_err());
    b.control.reconcile().await.unwrap();
    assert_eq!(b.scheduler.resolve_ref(&prod).unwrap().spec().version, 1);
    assert_eq!(b.scheduler.installed_versions("f"), [1, 2]);
    // Deleted there, gone here after a pass.
    a.control.delete_alias("f", "prod", "admin").await.unwrap();
    b.control.reconcile().await.unwrap();
    assert!(b.scheduler.resolve_ref(&prod).is_err());
}
