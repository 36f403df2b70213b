//! The process `Runtime`: an instance is one function process with its own Runtime API
//! endpoint. It starts when the process first asks for an event (the end of init), runs
//! one invocation at a time, and is unhealthy once the process has exited; dropping it
//! kills the process group and removes its cgroup and temporary directory.

use crate::api::{self, ApiState, Outcome, Pending, Status};
use crate::limits::{process_peak_bytes, Cgroup, MemoryLimiter};
use crate::output::{OutputCapture, Target};
use crate::spawn::{self, Launch};
use modelfn_core::{
    BoxFuture, FunctionError, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError,
    LogSink, Runtime,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How function processes are run on this server.
pub struct ProcessConfig {
    pub logs: Arc<dyn LogSink>,
    /// `<data dir>/runtime`: the Python client and the instances' temporary directories.
    pub work_dir: PathBuf,
    /// The interpreter for `python3` functions.
    pub python: PathBuf,
    pub region: String,
    /// This server's URL, for `AWS_ENDPOINT_URL` (set once the listener is bound).
    pub endpoint: Arc<OnceLock<String>>,
    /// The access key functions get as `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, so
    /// that AWS SDK calls from a function reach this modelfn signed.
    pub credentials: Arc<OnceLock<(String, String)>>,
    /// The user and group functions run as (set when modelfn runs as root).
    pub run_as: Option<(u32, u32)>,
    pub memory: MemoryLimiter,
}

/// `nobody:nogroup`.
pub const UNPRIVILEGED: (u32, u32) = (65534, 65534);

impl ProcessConfig {
    /// Looks at the machine: the Python to use, the user to run as, the memory limiter.
    pub fn detect(
        logs: Arc<dyn LogSink>,
        work_dir: PathBuf,
        python: Option<String>,
    ) -> ProcessConfig {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then_some(UNPRIVILEGED);
        let wanted = python.unwrap_or_else(|| "python3".to_string());
        let mut python = spawn::which(&wanted).unwrap_or_else(|| PathBuf::from(&wanted));
        if run_as.is_some() && !spawn::usable_by_others(&python) {
            // An interpreter under a private home (pyenv in /root) cannot run as nobody.
            if let Some(p) = ["/usr/bin/python3", "/usr/local/bin/python3"]
                .iter()
                .map(PathBuf::from)
                .find(|p| spawn::usable_by_others(p))
            {
                tracing::info!(
                    "{} is not usable by an unprivileged user; functions use {}",
                    python.display(),
                    p.display()
                );
                python = p;
            }
        }
        ProcessConfig {
            logs,
            work_dir,
            python,
            region: "us-east-1".into(),
            endpoint: Arc::new(OnceLock::new()),
            credentials: Arc::new(OnceLock::new()),
            run_as,
            memory: MemoryLimiter::detect(),
        }
    }

    pub fn python_client_path(&self) -> PathBuf {
        self.work_dir.join("modelfn_runtime.py")
    }
}

/// Starts function processes.
pub struct ProcessRuntime {
    cfg: Arc<ProcessConfig>,
}

fn chmod(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

impl ProcessRuntime {
    /// Prepares the work directory and writes the Python client into it.
    pub fn new(cfg: ProcessConfig) -> std::io::Result<ProcessRuntime> {
        std::fs::create_dir_all(cfg.work_dir.join("instances"))?;
        chmod(&cfg.work_dir, 0o755)?;
        chmod(&cfg.work_dir.join("instances"), 0o711)?;
        std::fs::write(cfg.python_client_path(), crate::PYTHON_CLIENT)?;
        chmod(&cfg.python_client_path(), 0o644)?;
        tracing::info!(
            memory = %cfg.memory.describe(),
            python = %cfg.python.display(),
            user = ?cfg.run_as,
            "function processes"
        );
        Ok(ProcessRuntime { cfg: Arc::new(cfg) })
    }

    pub fn config(&self) -> &ProcessConfig {
        &self.cfg
    }
}

impl Runtime for ProcessRuntime {
    fn start(
        &self,
        spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let inst = ProcessInstance::start(spec, self.cfg.clone()).await?;
            Ok(Arc::new(inst) as Arc<dyn Instance>)
        })
    }
}

/// One function process.
pub struct ProcessInstance {
    function: String,
    memory_mb: u32,
    next: mpsc::Sender<Pending>,
    state: Arc<ApiState>,
    pid: u32,
    dead: Arc<AtomicBool>,
    exited: watch::Receiver<Option<String>>,
    output: OutputCapture,
    busy: tokio::sync::Mutex<()>,
    cgroup: Mutex<Option<Cgroup>>,
    tmp_dir: PathBuf,
    server: JoinHandle<()>,
    watcher: JoinHandle<()>,
}

fn init_error(error_type: &str, message: impl Into<String>) -> InvokeError {
    InvokeError::InitFailed(FunctionError::new(error_type, message))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ProcessInstance {
    async fn start(
        spec: Arc<FunctionSpec>,
        cfg: Arc<ProcessConfig>,
    ) -> Result<ProcessInstance, InvokeError> {
        let m = &spec.manifest;
        let function = m.name.to_string();
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        let tmp_dir = cfg.work_dir.join("instances").join(&instance_id);
        std::fs::create_dir_all(&tmp_dir)
            .map_err(|e| InvokeError::Internal(format!("creating {}: {e}", tmp_dir.display())))?;
        let _ = chmod(&tmp_dir, 0o700);
        if let Some((uid, gid)) = cfg.run_as {
            // SAFETY: chown on a path we just created, with a valid C string.
            let c = std::ffi::CString::new(tmp_dir.as_os_str().as_encoded_bytes())
                .map_err(|e| InvokeError::Internal(e.to_string()))?;
            unsafe { libc::chown(c.as_ptr(), uid, gid) };
        }

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| InvokeError::Internal(format!("cannot open a Runtime API port: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| InvokeError::Internal(e.to_string()))?
            .port();
        let app = api::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let cgroup = cfg
            .memory
            .create(m.memory_mb)
            .map_err(|e| InvokeError::Internal(format!("cannot create a memory cgroup: {e}")))?;
        let launch = Launch {
            api_port: port,
            tmp_dir: &tmp_dir,
            instance_id: &instance_id,
            rlimit_as: cfg.memory.rlimit_bytes(m.memory_mb),
        };
        let cleanup = |server: &JoinHandle<()>| {
            server.abort();
            let _ = std::fs::remove_dir_all(&tmp_dir);
        };
        let mut cmd = match spawn::command(&spec, &cfg, &launch) {
            Ok(c) => c,
            Err(e) => {
                cleanup(&server);
                return Err(InvokeError::InitFailed(e));
            }
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                cleanup(&server);
                return Err(init_error(
                    "Runtime.InvalidEntrypoint",
                    format!("cannot start the function process: {e}"),
                ));
            }
        };
        let pid = child.id().unwrap_or(0);
        if let Some(cg) = &cgroup {
            if let Err(e) = cg.add(pid) {
                tracing::warn!("cannot move pid {pid} into its memory cgroup: {e}");
            }
        }
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            cleanup(&server);
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
        let watcher = tokio::spawn(async move {
            let status = child.wait().await;
            dead_flag.store(true, Ordering::SeqCst);
            let text = match status {
                Ok(s) => describe_exit(s),
                Err(e) => format!("error: {e}"),
            };
            let _ = exit_tx.send(Some(text));
        });

        let instance = ProcessInstance {
            function,
            memory_mb: m.memory_mb,
            next: next_tx,
            state,
            pid,
            dead,
            exited,
            output,
            busy: tokio::sync::Mutex::new(()),
            cgroup: Mutex::new(cgroup),
            tmp_dir,
            server,
            watcher,
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
        let oom = self
            .cgroup
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|c| c.oom_killed()))
            .unwrap_or(false);
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

/// An X-Ray style trace header for a request: `Root=1-<time>-<24 hex>;Sampled=0`.
fn trace_id(request_id: &str) -> String {
    let hex: String = request_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(24)
        .collect();
    format!("Root=1-{:08x}-{hex:0>24};Sampled=0", unix_ms() / 1000)
}

/// Resolves once the process has exited.
async fn wait_exit(exited: &mut watch::Receiver<Option<String>>) {
    let _ = exited.wait_for(|e| e.is_some()).await;
}

fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".into(),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => "unknown".into(),
    }
}

fn content_type(ct: Option<&str>) -> &'static str {
    match ct
        .map(modelfn_core::invocation::normalize_media_type)
        .as_deref()
    {
        Some("application/octet-stream") | Some("application/unknown") => {
            "application/octet-stream"
        }
        Some("text/plain") => "text/plain; charset=utf-8",
        _ => "application/json",
    }
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
                trace_id: trace_id(&inv.request_id),
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
                }) => Ok(InvocationOutput {
                    body,
                    content_type: content_type(ct.as_deref()),
                }),
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
        let from_cgroup = self
            .cgroup
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(|c| c.peak_bytes()));
        from_cgroup
            .or_else(|| process_peak_bytes(self.pid))
            .map(|b| b.div_ceil(1024 * 1024))
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: kill has no memory effects; the negative pid names the process group
            // the function process leads (spawned with process_group(0)).
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
                libc::kill(self.pid as i32, libc::SIGKILL);
            }
        }
        self.server.abort();
        self.watcher.abort();
        let cgroup = self.cgroup.lock().ok().and_then(|mut c| c.take());
        let tmp = std::mem::take(&mut self.tmp_dir);
        let function = std::mem::take(&mut self.function);
        // Removing a cgroup waits for the kernel to reap its processes: not on this thread.
        std::thread::spawn(move || {
            drop(cgroup);
            if !tmp.as_os_str().is_empty() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            tracing::debug!(function, "instance stopped");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(None), "application/json");
        assert_eq!(
            content_type(Some("application/unknown")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(Some("Text/Plain; charset=x")),
            "text/plain; charset=utf-8"
        );
    }
}
