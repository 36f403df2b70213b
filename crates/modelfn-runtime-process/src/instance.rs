//! A process instance: one function process in its own sandbox, with its own Runtime API
//! endpoint. It starts when the process first asks for an event (the end of init), runs
//! one invocation at a time, and is unhealthy once the process has exited; dropping it
//! kills the sandbox and everything in its cgroups.

use crate::api::{self, ApiState, Outcome, Pending, Status};
use crate::cgroup::{process_peak_bytes, InstanceCgroup, Limits};
use crate::config::ProcessConfig;
use crate::lambda::{content_type, describe_exit, trace_header, unix_ms};
use crate::output::{OutputCapture, Target};
use crate::sandbox::{Launch, Net, SandboxGuard};
use crate::spawn::{self, Endpoints, SANDBOX_API_PORT, SANDBOX_ENDPOINT_PORT};
use modelfn_core::{
    BoxFuture, FunctionCaller, FunctionError, FunctionSpec, Instance, Invocation, InvocationOutput,
    InvokeError, NetworkMode,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// One function process.
pub struct ProcessInstance {
    memory_mb: u32,
    next: mpsc::Sender<Pending>,
    state: Arc<ApiState>,
    dead: Arc<AtomicBool>,
    exited: watch::Receiver<Option<String>>,
    output: OutputCapture,
    busy: tokio::sync::Mutex<()>,
    /// What the sandbox holds on the host; its drop kills and cleans up, whether the
    /// start failed halfway or the instance served for hours.
    guard: SandboxGuard,
}

fn init_error(error_type: &str, message: impl Into<String>) -> InvokeError {
    InvokeError::InitFailed(FunctionError::new(error_type, message))
}

fn internal(what: &str) -> impl Fn(std::io::Error) -> InvokeError + '_ {
    move |e| InvokeError::Internal(format!("{what}: {e}"))
}

/// Runs a blocking step of the start off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

impl ProcessInstance {
    pub(crate) async fn start(
        spec: Arc<FunctionSpec>,
        cfg: Arc<ProcessConfig>,
    ) -> Result<ProcessInstance, InvokeError> {
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
        let argv = spawn::argv(&spec, &cfg).map_err(InvokeError::InitFailed)?;
        let (work, layers) = (cfg.work_dir.join("opt"), spec.layers.clone());
        let opt = blocking(move || crate::layers::merged(&work, &layers))
            .await
            .map_err(internal("merging the layers into /opt"))?;
        let cgroup = cfg
            .cgroups
            .create(Limits {
                memory_mb: m.memory_mb,
                pids: cfg.pids_max,
            })
            .map_err(internal("cannot create the instance's cgroups"))?;
        let mut guard = SandboxGuard::new(function.clone(), cgroup);

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
        let env = spawn::environment(
            &spec,
            &cfg,
            opt.as_deref(),
            &Endpoints {
                runtime_api: &runtime_api,
                endpoint: endpoint.as_deref(),
                instance_id: &instance_id,
            },
        );
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

        let (next_tx, next_rx) = mpsc::channel(1);
        let (status_tx, mut status_rx) = watch::channel(Status::Starting);
        let current = Arc::new(Mutex::new(None));
        let state = Arc::new(ApiState {
            next: tokio::sync::Mutex::new(next_rx),
            in_flight: Mutex::new(Default::default()),
            status: status_tx,
            current: current.clone(),
            function_arn: format!(
                "arn:aws:lambda:{}:000000000000:function:{function}",
                cfg.region
            ),
        });
        let listener = tokio_listener(api_listener)?;
        let app = api::router(state.clone());
        guard.tasks.push(tokio::spawn(api::serve(listener, app)));
        if let Some(l) = endpoint_listener {
            let listener = tokio_listener(l)?;
            let mut gateway = cfg.gateway.subscribe();
            let caller = FunctionCaller {
                function: function.clone(),
                permissions: m.permissions.clone(),
            };
            guard.tasks.push(tokio::spawn(async move {
                let serve = gateway
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|g| g.clone());
                if let Some(serve) = serve {
                    serve(listener, caller).await;
                }
            }));
        }
        handshake
            .release()
            .map_err(internal("releasing the sandbox"))?;

        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(InvokeError::Internal(
                "the function process has no output pipes".into(),
            ));
        };
        let output = OutputCapture::start(
            stdout,
            stderr,
            Target {
                function: function.clone(),
                current,
                logs: cfg.logs.clone(),
            },
        );
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

        let instance = ProcessInstance {
            memory_mb: m.memory_mb,
            next: next_tx,
            state,
            dead,
            exited,
            output,
            busy: tokio::sync::Mutex::new(()),
            guard,
        };
        // Initialization ends when the process asks for its first event.
        let mut exited = instance.exited.clone();
        loop {
            let status = status_rx.borrow_and_update().clone();
            match status {
                Status::Ready => return Ok(instance),
                Status::InitError(e) => return Err(InvokeError::InitFailed(e)),
                Status::Starting => {}
            }
            tokio::select! {
                changed = status_rx.changed() => {
                    if changed.is_err() {
                        return Err(InvokeError::Internal("the Runtime API stopped".into()));
                    }
                }
                _ = wait_exit(&mut exited) => {
                    // An init error posted just before exiting wins.
                    if let Status::InitError(e) = status_rx.borrow().clone() {
                        return Err(InvokeError::InitFailed(e));
                    }
                    instance.output.drain().await;
                    return Err(InvokeError::InitFailed(instance.exit_error(None)));
                }
            }
        }
    }

    /// Processes in the instance's cgroup (its whole tree), where cgroups are in use.
    pub fn processes(&self) -> Option<usize> {
        self.guard.cgroup().map(InstanceCgroup::members)
    }

    /// Why the process is gone, as Lambda words it.
    fn exit_error(&self, request_id: Option<&str>) -> FunctionError {
        let how = self
            .exited
            .borrow()
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let prefix = request_id
            .map(|id| format!("RequestId: {id} "))
            .unwrap_or_default();
        let oom = self.guard.cgroup().is_some_and(InstanceCgroup::oom_killed);
        if oom {
            return FunctionError::new(
                "Runtime.OutOfMemory",
                format!("{prefix}Error: Runtime exited with error: {how} (out of memory: memory_mb = {} exceeded)", self.memory_mb),
            );
        }
        let mut err = FunctionError::new(
            "Runtime.ExitError",
            format!("{prefix}Error: Runtime exited with error: {how}"),
        );
        err.stack_trace = self.output.stderr_tail();
        err
    }
}

/// Resolves once the process has exited.
async fn wait_exit(exited: &mut watch::Receiver<Option<String>>) {
    let _ = exited.wait_for(|e| e.is_some()).await;
}

fn tokio_listener(l: std::net::TcpListener) -> Result<tokio::net::TcpListener, InvokeError> {
    l.set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(l))
        .map_err(internal("serving the sandbox's socket"))
}

impl Instance for ProcessInstance {
    fn invoke(&self, inv: Invocation) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>> {
        Box::pin(async move {
            let _one_at_a_time = self.busy.lock().await;
            if self.dead.load(Ordering::SeqCst) {
                return Err(InvokeError::Function(
                    self.exit_error(Some(&inv.request_id)),
                ));
            }
            let remaining = inv
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(900));
            let (reply, answer) = oneshot::channel();
            let pending = Pending {
                request_id: inv.request_id.clone(),
                body: inv.body,
                content_type: inv
                    .content_type
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "application/json".into()),
                deadline_ms: unix_ms() + remaining.as_millis() as u64,
                // The caller's trace when it sent one, as Lambda passes it on.
                trace_id: trace_header(inv.trace.as_deref(), &inv.request_id),
                reply,
            };
            if self.next.send(pending).await.is_err() {
                return Err(InvokeError::Unavailable(
                    "the function instance has stopped".into(),
                ));
            }
            let mut exited = self.exited.clone();
            let outcome = tokio::select! {
                r = answer => r.ok(),
                _ = wait_exit(&mut exited) => None,
            };
            self.output.drain().await;
            if let Ok(mut cur) = self.state.current.lock() {
                *cur = None;
            }
            match outcome {
                Some(Outcome::Response {
                    body,
                    content_type: ct,
                }) => Ok(InvocationOutput::new(body, content_type(ct.as_deref()))),
                Some(Outcome::Error(e)) => Err(InvokeError::Function(e)),
                None => Err(InvokeError::Function(
                    self.exit_error(Some(&inv.request_id)),
                )),
            }
        })
    }

    fn healthy(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }

    fn max_memory_used_mb(&self) -> Option<u64> {
        let from_cgroup = self.guard.cgroup().and_then(InstanceCgroup::peak_bytes);
        from_cgroup
            .or_else(|| process_peak_bytes(self.guard.pid))
            .map(|b| b.div_ceil(1024 * 1024))
    }
}
