//! Wiring: opens the stores, builds the runtimes, scheduler, control plane and router,
//! restores deployed functions, and serves until SIGTERM/SIGINT (finishing requests in
//! flight).

use crate::config::ServeConfig;
use crate::stores::{self, set_mode};
use anyhow::{Context, Result};
use modelfn_control::secrets::Sealer;
use modelfn_control::{spawn_reconciler, ControlPlane, Limits};
use modelfn_core::{DoorAuth, Runtime, RuntimeKind};
use modelfn_gateway::apis::CompiledApis;
use modelfn_gateway::events::AsyncEvents;
use modelfn_gateway::serve::{self, FrontDoor};
use modelfn_gateway::{router, AppContext, AppState, GatewayConfig};
use modelfn_registry::{CodeCache, PackageLimits};
use modelfn_runtime_onnx::{LibraryConfig, OnnxConfig, OnnxRuntime};
use modelfn_runtime_process::{ProcessConfig, ProcessRuntime, ServeFn};
use modelfn_scheduler::{Scheduler, SchedulerConfig};
use modelfn_telemetry::{LambdaLines, LogStore};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Connections one sandbox may hold open to modelfn's API.
const SANDBOX_CONNECTIONS: usize = 64;
/// How often this node reads desired state written elsewhere.
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The key-encryption key's file in the data directory (unless `MODELFN_KEK` is set).
pub const KEK_FILE: &str = "secrets.kek";

pub use crate::stores::TOKEN_FILE;

pub fn init_tracing(cfg: &ServeConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub control: Arc<ControlPlane>,
    pub token_path: std::path::PathBuf,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Waits until the server has shut down.
    pub async fn wait(self) -> Result<()> {
        self.task
            .await
            .context("the server task failed")?
            .context("serving HTTP")?;
        eprintln!("modelfn: stopped");
        Ok(())
    }
}

/// Starts everything and begins serving; returns once the listener is bound.
pub async fn start(cfg: ServeConfig) -> Result<RunningServer> {
    // Before any HTTPS client is built (the OTLP exporter, the S3 blob store).
    modelfn_registry::s3::install_tls();
    let data = &cfg.data_dir;
    // Everything modelfn writes is private: the database with its WAL and SHM files, keys,
    // logs, code. Sandboxes see only what is mounted into them, never this directory.
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o077) };
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating the data directory {}", data.display()))?;
    set_mode(data, 0o700)?;
    let token = stores::admin_token(data, cfg.admin_token.as_deref())?;
    // Connections are bounded below the open-file limit, with room kept for instances,
    // the database and logs.
    let nofile = serve::raise_nofile();
    let fd_room = (nofile.saturating_sub(512) as usize).max(64);
    let door = FrontDoor {
        header_timeout: cfg.header_timeout,
        max_connections: cfg.max_connections.unwrap_or(fd_room).min(fd_room),
        shutdown_timeout: cfg.shutdown_timeout,
    };
    let backlog = cfg.listen_backlog.unwrap_or_else(serve::somaxconn);
    let listener = serve::listen(cfg.listen, backlog)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;

    // Access-key secrets are sealed with a key-encryption key kept apart from the database.
    let sealer = Sealer::load(cfg.kek.as_deref(), &data.join(KEK_FILE))
        .map_err(|e| anyhow::anyhow!("the key-encryption key: {e}"))?;
    let node = stores::node_name(data)?;
    let meta = stores::metadata(&cfg, data).await?;
    let function_limits = PackageLimits {
        max_compressed_bytes: cfg.max_package_bytes,
        max_unpacked_bytes: cfg.max_unpacked_bytes,
    };
    let layer_limits = PackageLimits {
        max_compressed_bytes: cfg.max_layer_bytes,
        max_unpacked_bytes: cfg.max_layer_bytes,
    };
    let widest = PackageLimits {
        max_compressed_bytes: cfg.max_package_bytes.max(cfg.max_layer_bytes),
        max_unpacked_bytes: cfg.max_unpacked_bytes.max(cfg.max_layer_bytes),
    };
    let blobs = stores::blobs(&cfg, data, widest.max_compressed_bytes)?;
    let code = CodeCache::new(data.join("artifacts/code"), blobs, widest)
        .context("opening the code cache")?;
    let logs =
        Arc::new(LogStore::new(Some(data.join("logs"))).context("opening the log directory")?);
    set_mode(&data.join("logs"), 0o700)?;

    let onnx = Arc::new(OnnxRuntime::new(OnnxConfig {
        library: LibraryConfig {
            path: cfg.ort_library.clone(),
            data_dir: Some(data.clone()),
            allow_pip: cfg.install_onnxruntime,
            ..Default::default()
        },
        ..OnnxConfig::default()
    }));
    // Find (or install) ONNX Runtime now, so that a missing library is reported at start
    // and the first cold start does not pay for it.
    let preload = onnx.clone();
    tokio::task::spawn_blocking(move || match preload.preload() {
        Ok(lib) => tracing::info!("ONNX Runtime ready: {}", lib.path.display()),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("modelfn: {e}");
        }
    });
    let process_cfg = ProcessConfig::detect(
        logs.clone(),
        data.join("runtime"),
        cfg.function_python.clone(),
        cfg.function_uids,
    );
    if let (Err(why), true) = (&process_cfg.sandbox, cfg.code_functions) {
        anyhow::bail!(
            "code functions cannot run sandboxed here: {why}\n(to serve ONNX functions only, set code_functions = false in a --config file)"
        );
    }
    let _ = process_cfg.endpoint.set(format!("http://{addr}"));
    let sandbox_gateway = process_cfg.gateway.clone();
    let processes = Arc::new(
        ProcessRuntime::new(process_cfg).context("preparing the function process runtime")?,
    );
    let mut runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>> = HashMap::new();
    runtimes.insert(RuntimeKind::Onnx, onnx);
    runtimes.insert(RuntimeKind::Python3, processes.clone());
    runtimes.insert(RuntimeKind::Provided, processes);
    let scheduler_config = SchedulerConfig {
        max_concurrency: cfg.max_concurrency,
        queue_depth: cfg.queue_depth,
        starts_per_core: cfg.starts_per_core,
        metrics: cfg.metrics,
        ..SchedulerConfig::default()
    };
    // Every invocation's record, unless turned off (to measure what they cost).
    let records = if cfg.records {
        let dir = data.join("records");
        let store = modelfn_telemetry::RecordStore::open(&dir, cfg.records_retention)
            .context("opening the invocation records")?;
        set_mode(&dir, 0o700)?;
        Some(store)
    } else {
        None
    };
    let mut observers: Vec<Arc<dyn modelfn_core::InvocationObserver>> =
        vec![Arc::new(LambdaLines::new(logs.clone()))];
    if let Some(store) = &records {
        observers.push(Arc::new(modelfn_telemetry::Recorder::new(store.clone())));
    }
    let tracer = match &cfg.traces {
        Some(t) => Some(modelfn_telemetry::Tracer::new(t).context("starting the tracer")?),
        None => None,
    };
    if let Some(t) = &tracer {
        observers.push(t.clone());
    }
    let scheduler = Arc::new(Scheduler::with_config(
        runtimes,
        Arc::new(modelfn_telemetry::Observers(observers)),
        scheduler_config,
    ));
    // Scale to zero and provisioned concurrency.
    let reaper = scheduler.spawn_reaper();
    let purger = crate::memory::spawn_purger(scheduler.clone());
    let limits = Limits {
        function: function_limits,
        layer: layer_limits,
        total_unpacked_bytes: cfg.max_unpacked_bytes,
    };
    // This node in the cluster's membership (on SQLite, the cluster is this node).
    let identity = modelfn_control::NodeIdentity {
        name: node.clone(),
        address: cfg
            .advertise
            .clone()
            .unwrap_or_else(|| stores::node_address(addr)),
        started_ms: modelfn_registry::now_ms(),
    };
    // On PostgreSQL, changes committed by any node wake this one's reconciler at once.
    let change_watch = meta.watch_changes();
    let control = Arc::new(ControlPlane::new(
        Arc::new(meta),
        Arc::new(code),
        scheduler.clone(),
        limits,
        sealer,
    ));
    let sealed = control
        .secure_keys()
        .await
        .context("sealing access-key secrets")?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed access-key secrets stored in the clear by an earlier release"
        );
    }
    let compiled_apis: Arc<CompiledApis> = Default::default();
    control.follow_apis(compiled_apis.clone());
    let restored = control
        .restore()
        .await
        .context("restoring deployed functions")?;
    let apis = compiled_apis.all().len();
    // Writes made elsewhere (another node, another process on this database) arrive here.
    let reconciler = spawn_reconciler(
        control.clone(),
        RECONCILE_EVERY,
        change_watch.as_ref().map(|w| w.wake()),
    );
    let heartbeat = modelfn_control::spawn_heartbeat(control.clone(), identity);

    let mut gw = GatewayConfig::new(token);
    gw.max_invoke_body_bytes = cfg.max_invoke_body_bytes;
    gw.max_map_input_bytes = cfg.max_map_input_bytes;
    gw.max_package_bytes = cfg.max_package_bytes as usize;
    gw.max_layer_bytes = cfg.max_layer_bytes as usize;
    gw.aws_allow_unsigned = cfg.aws_allow_unsigned;
    gw.metrics_token = cfg.metrics_token.clone();
    gw.invoke_auth = cfg.invoke_auth.unwrap_or(if addr.ip().is_loopback() {
        DoorAuth::None
    } else {
        DoorAuth::Key
    });
    let ready = Arc::new(AtomicBool::new(false));
    let sql_queue = stores::queue(&cfg, data, &node).await?;
    let queue: Arc<dyn modelfn_queue::InvocationQueue> = sql_queue.clone();
    let events = AsyncEvents::new(queue.clone(), cfg.async_events.clone());
    // The queue's database also holds the leases that keep a stream mapping on one node.
    let streams = modelfn_streams::StreamSources::new(scheduler.clone(), queue, sql_queue);
    let objects = stores::buckets(&cfg, data)?;
    let state = AppState::new(AppContext {
        control: control.clone(),
        scheduler: scheduler.clone(),
        config: Arc::new(gw),
        logs,
        records,
        tracer,
        apis: compiled_apis,
        ready: ready.clone(),
        events: events.clone(),
        streams: streams.clone(),
        objects: Arc::new(objects),
    });
    let workers = modelfn_gateway::events::spawn_workers(events.clone(), scheduler.clone());
    let stream_sources = streams.spawn();
    let app = router(state.clone());
    // Sandboxes reach this modelfn through a listener inside their own network namespace.
    let inner = app.clone();
    let serve: ServeFn = Arc::new(move |listener, caller| {
        let app = modelfn_gateway::sandbox::for_function(inner.clone(), caller);
        let door = FrontDoor {
            max_connections: SANDBOX_CONNECTIONS,
            ..FrontDoor::default()
        };
        Box::pin(async move {
            let _ = serve::serve(listener, app, None, door, std::future::pending()).await;
        })
    });
    sandbox_gateway.send_replace(Some(serve));
    ready.store(true, Ordering::Release);
    let token_path = data.join(TOKEN_FILE);
    println!("modelfn listening on http://{addr}");
    println!(
        "data directory {} ({restored} functions, {apis} APIs restored); admin token in {}",
        data.display(),
        token_path.display()
    );
    let _ = std::io::stdout().flush();

    let exit_with_stdin = cfg.exit_with_stdin;
    tracing::info!(
        max_connections = door.max_connections,
        backlog,
        open_files = nofile,
        "front door"
    );
    // Shutdown, in the mini-redis way: readiness goes first, then the front door drains
    // its requests, then queued events get what is left of the deadline, then background
    // work stops.
    let draining = ready.clone();
    let signal = async move {
        shutdown_signal(exit_with_stdin).await;
        draining.store(false, Ordering::Release);
    };
    let deadline = door.shutdown_timeout;
    let task = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let served = serve::serve(listener, app, Some(state), door, signal).await;
        let dropped = events
            .drain(
                deadline
                    .saturating_sub(started.elapsed())
                    .max(std::time::Duration::from_millis(100)),
            )
            .await;
        if dropped > 0 {
            tracing::warn!(
                running = dropped,
                "asynchronous events still running at the shutdown deadline will run again after a restart"
            );
        }
        streams
            .stop(
                deadline
                    .saturating_sub(started.elapsed())
                    .max(std::time::Duration::from_millis(100)),
            )
            .await;
        stream_sources.abort();
        workers.abort();
        reaper.abort();
        purger.abort();
        reconciler.abort();
        drop(change_watch);
        heartbeat.abort();
        served
    });
    Ok(RunningServer {
        addr,
        control,
        token_path,
        task,
    })
}

/// Resolves on SIGINT, SIGTERM or (when asked) the end of standard input.
async fn shutdown_signal(exit_with_stdin: bool) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    let stdin_closed = async {
        if exit_with_stdin {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 64];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
        _ = stdin_closed => {},
    }
    eprintln!("modelfn: shutting down, finishing requests in flight");
}
