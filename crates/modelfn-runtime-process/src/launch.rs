//! Starting one function process in a sandbox of its own: its layers, cgroups, Lambda's
//! environment, bubblewrap, the Runtime API and `AWS_ENDPOINT_URL` inside its network
//! namespace, its output capture and its exit watch. Both an ordinary instance and a
//! snap-start template begin here; they differ in how they end initialization.

use crate::api::{self, ApiState, Pending, Status};
use crate::cgroup::Limits;
use crate::config::ProcessConfig;
use crate::lambda::describe_exit;
use crate::output::{OutputCapture, Target};
use crate::sandbox::{Launch, Net, SandboxGuard};
use crate::spawn::{self, Endpoints, SANDBOX_API_PORT, SANDBOX_ENDPOINT_PORT};
use modelfn_core::{FunctionCaller, FunctionError, FunctionSpec, InvokeError, NetworkMode};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub(crate) fn init_error(error_type: &str, message: impl Into<String>) -> InvokeError {
    InvokeError::InitFailed(FunctionError::new(error_type, message))
}

pub(crate) fn internal(what: &str) -> impl Fn(std::io::Error) -> InvokeError + '_ {
    move |e| InvokeError::Internal(format!("{what}: {e}"))
}

/// Runs a blocking step of the start off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

/// One process's Runtime API: the state its server shares, and the ends the instance keeps.
pub(crate) struct Api {
    pub state: Arc<ApiState>,
    pub next: mpsc::Sender<Pending>,
    pub status: watch::Receiver<Status>,
    pub current: Arc<Mutex<Option<String>>>,
}

impl Api {
    pub fn new(function: &str, region: &str) -> Api {
        let (next, next_rx) = mpsc::channel(1);
        let (status_tx, status) = watch::channel(Status::Starting);
        let current = Arc::new(Mutex::new(None));
        let state = Arc::new(ApiState {
            next: tokio::sync::Mutex::new(next_rx),
            in_flight: Mutex::new(Default::default()),
            status: status_tx,
            current: current.clone(),
            function_arn: format!("arn:aws:lambda:{region}:000000000000:function:{function}"),
        });
        Api {
            state,
            next,
            status,
            current,
        }
    }

    /// Where the process's output goes: the log sink, tagged with its current request.
    pub fn output_target(&self, function: &str, cfg: &ProcessConfig) -> Target {
        Target {
            function: function.to_string(),
            current: self.current.clone(),
            logs: cfg.logs.clone(),
        }
    }
}

/// What a snap-start template adds to a launch: its control socket (inherited at the
/// same number) and the environment that makes the process a template.
pub(crate) struct TemplateLaunch {
    pub control_fd: RawFd,
    pub env: Vec<(String, String)>,
}

/// A started sandbox, before its process has finished initializing.
pub(crate) struct Launched {
    pub guard: SandboxGuard,
    pub api: Api,
    /// The Runtime API's server (a template stops it once it is ready).
    pub api_task: tokio::task::JoinHandle<()>,
    pub output: OutputCapture,
    pub exited: watch::Receiver<Option<String>>,
    pub dead: Arc<AtomicBool>,
}

pub(crate) fn tokio_listener(
    l: std::net::TcpListener,
) -> Result<tokio::net::TcpListener, InvokeError> {
    l.set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(l))
        .map_err(internal("serving the sandbox's socket"))
}

/// Serves modelfn's API to the function on `listener` (its `AWS_ENDPOINT_URL`), once the
/// server has built it.
pub(crate) fn serve_endpoint(
    listener: tokio::net::TcpListener,
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
) -> tokio::task::JoinHandle<()> {
    let mut gateway = cfg.gateway.subscribe();
    let caller = FunctionCaller {
        function: spec.manifest.name.to_string(),
        permissions: spec.manifest.permissions.clone(),
    };
    tokio::spawn(async move {
        let serve = gateway
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|g| g.clone());
        if let Some(serve) = serve {
            serve(listener, caller).await;
        }
    })
}

/// The guard of a new instance, holding its new cgroups (where cgroups are in use).
pub(crate) fn new_guard(
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
) -> Result<SandboxGuard, InvokeError> {
    let cgroup = cfg
        .cgroups
        .create(Limits {
            memory_mb: spec.manifest.memory_mb,
            pids: cfg.pids_max,
        })
        .map_err(internal("cannot create the instance's cgroups"))?;
    Ok(SandboxGuard::new(spec.manifest.name.to_string(), cgroup))
}

/// Starts the function's process in a new sandbox.
pub(crate) async fn launch(
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
    template: Option<TemplateLaunch>,
) -> Result<Launched, InvokeError> {
    let m = &spec.manifest;
    let function = m.name.to_string();
    let sandbox = cfg
        .sandbox
        .as_ref()
        .map_err(|why| init_error("Runtime.SandboxUnavailable", why.clone()))?;
    let instance_id = uuid::Uuid::new_v4().simple().to_string();
    let net = match m.network {
        NetworkMode::Host => Net::Host,
        NetworkMode::None => Net::Isolated,
    };
    let argv = spawn::argv(spec, cfg).map_err(InvokeError::InitFailed)?;
    let (work, layers) = (cfg.work_dir.join("opt"), spec.layers.clone());
    let opt = blocking(move || crate::layers::merged(&work, &layers))
        .await
        .map_err(internal("merging the layers into /opt"))?;
    let mut guard = new_guard(spec, cfg)?;

    // A host-network sandbox's Runtime API listens on the host's loopback.
    let host_api = match net {
        Net::Host => Some(
            std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(internal("cannot open a Runtime API port"))?,
        ),
        Net::Isolated => None,
    };
    let runtime_api = match &host_api {
        Some(l) => l
            .local_addr()
            .map_err(internal("Runtime API port"))?
            .to_string(),
        None => format!("127.0.0.1:{SANDBOX_API_PORT}"),
    };
    let inner_endpoint = format!("http://127.0.0.1:{SANDBOX_ENDPOINT_PORT}");
    let endpoint = match net {
        Net::Host => cfg.endpoint.get().cloned(),
        Net::Isolated => Some(inner_endpoint),
    };
    let mut env = spawn::environment(
        spec,
        cfg,
        opt.as_deref(),
        &Endpoints {
            runtime_api: &runtime_api,
            endpoint: endpoint.as_deref(),
            instance_id: &instance_id,
        },
    );
    let pass_fds = match &template {
        Some(t) => {
            env.extend(t.env.iter().cloned());
            vec![t.control_fd]
        }
        None => Vec::new(),
    };
    let (mut cmd, mut handshake) = sandbox
        .command(&Launch {
            code: &spec.code_dir,
            runtime_dir: &cfg.client_dir(),
            opt: opt.as_deref(),
            model: spec
                .model
                .as_ref()
                .map(|s| (s.path.as_path(), spawn::model_path(s))),
            tmp_mb: m.ephemeral_storage_mb,
            net,
            uid: sandbox.uid_for(&function),
            argv,
            env,
            cgroup: guard.cgroup(),
            rlimit_as: cfg.cgroups.rlimit_bytes(m.memory_mb),
            as_pid_1: template.is_some(),
            pass_fds,
        })
        .map_err(internal("preparing the sandbox"))?;
    let mut child = cmd.spawn().map_err(|e| {
        init_error(
            "Runtime.InvalidEntrypoint",
            format!("cannot start the sandbox: {e}"),
        )
    })?;
    guard.pid = child.id().unwrap_or(0);
    let (sandbox_pid, handshake) = blocking(move || {
        let p = handshake.sandbox_pid(Duration::from_secs(10))?;
        Ok((p, handshake))
    })
    .await
    .map_err(internal("starting the sandbox"))?;
    guard.sandbox_pid = sandbox_pid;
    guard.pidfd = crate::sandbox::pidfd(sandbox_pid);
    let (api_listener, endpoint_listener) = match host_api {
        Some(l) => (l, None),
        None => {
            let mut ls = blocking(move || {
                crate::netns::listen_in(sandbox_pid, &[SANDBOX_API_PORT, SANDBOX_ENDPOINT_PORT])
            })
            .await
            .map_err(internal("opening the sandbox's Runtime API"))?;
            let endpoint = ls.pop();
            (ls.remove(0), endpoint)
        }
    };

    let api = Api::new(&function, &cfg.region);
    let listener = tokio_listener(api_listener)?;
    let api_task = tokio::spawn(api::serve(listener, api::router(api.state.clone())));
    if let Some(l) = endpoint_listener {
        guard
            .tasks
            .push(serve_endpoint(tokio_listener(l)?, spec, cfg));
    }
    handshake
        .release()
        .map_err(internal("releasing the sandbox"))?;

    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(InvokeError::Internal(
            "the function process has no output pipes".into(),
        ));
    };
    let output = OutputCapture::start(stdout, stderr, api.output_target(&function, cfg));
    let dead = Arc::new(AtomicBool::new(false));
    let (exit_tx, exited) = watch::channel(None);
    let dead_flag = dead.clone();
    guard.tasks.push(tokio::spawn(async move {
        let status = child.wait().await;
        dead_flag.store(true, Ordering::SeqCst);
        let text = match status {
            Ok(s) => describe_exit(s),
            Err(e) => format!("error: {e}"),
        };
        let _ = exit_tx.send(Some(text));
    }));
    Ok(Launched {
        guard,
        api,
        api_task,
        output,
        exited,
        dead,
    })
}
