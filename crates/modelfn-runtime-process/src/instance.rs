//! A process instance: one function process in its own sandbox, with its own Runtime API
//! endpoint. It starts when the process first asks for an event (the end of init), runs
//! one invocation at a time, and is unhealthy once the process has exited; dropping it
//! kills the sandbox and everything in its cgroups.

use crate::api::{ApiState, Outcome, Pending, Status};
use crate::cgroup::{process_peak_bytes, InstanceCgroup};
use crate::config::ProcessConfig;
use crate::lambda::{content_type, trace_header, unix_ms};
use crate::launch::{launch, Api};
use crate::output::OutputCapture;
use crate::sandbox::SandboxGuard;
use modelfn_core::{
    BoxFuture, FunctionError, FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// A snap-start instance's template, kept while the instance lives (it shares the
    /// template's sandbox).
    template: Option<Arc<crate::template::Template>>,
    /// Forked from a template that was already initialized (a restore, not an init).
    restored: bool,
}

/// The parts of a started process an instance is made of.
pub(crate) struct Parts {
    pub memory_mb: u32,
    pub api: Api,
    pub dead: Arc<AtomicBool>,
    pub exited: watch::Receiver<Option<String>>,
    pub output: OutputCapture,
    pub guard: SandboxGuard,
    pub template: Option<Arc<crate::template::Template>>,
    pub restored: bool,
}

impl ProcessInstance {
    /// Starts a process in a sandbox of its own and waits for the end of its init.
    pub(crate) async fn start(
        spec: Arc<FunctionSpec>,
        cfg: Arc<ProcessConfig>,
    ) -> Result<ProcessInstance, InvokeError> {
        let l = launch(&spec, &cfg, None).await?;
        ProcessInstance::launched(l, spec.manifest.memory_mb).await
    }

    /// The instance of a launched process (one a refusing template became included).
    pub(crate) async fn launched(
        mut l: crate::launch::Launched,
        memory_mb: u32,
    ) -> Result<ProcessInstance, InvokeError> {
        l.guard.tasks.push(l.api_task);
        ProcessInstance::from_parts(Parts {
            memory_mb,
            api: l.api,
            dead: l.dead,
            exited: l.exited,
            output: l.output,
            guard: l.guard,
            template: None,
            restored: false,
        })
        .await
    }

    /// Makes the instance of a started process once it has asked for its first event
    /// (the end of its initialization, or of its restore), or fails with its init error.
    pub(crate) async fn from_parts(p: Parts) -> Result<ProcessInstance, InvokeError> {
        let mut status_rx = p.api.status;
        let instance = ProcessInstance {
            memory_mb: p.memory_mb,
            next: p.api.next,
            state: p.api.state,
            dead: p.dead,
            exited: p.exited,
            output: p.output,
            busy: tokio::sync::Mutex::new(()),
            guard: p.guard,
            template: p.template,
            restored: p.restored,
        };
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
        exit_error(
            &self.exited,
            &self.guard,
            &self.output,
            self.memory_mb,
            request_id,
        )
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        if let Some(t) = &self.template {
            t.touch();
        }
    }
}

/// Why a process is gone, as Lambda words it: out of memory when its cgroup's OOM killer
/// acted, otherwise its exit with the last lines of its stderr.
pub(crate) fn exit_error(
    exited: &watch::Receiver<Option<String>>,
    guard: &SandboxGuard,
    output: &OutputCapture,
    memory_mb: u32,
    request_id: Option<&str>,
) -> FunctionError {
    let how = exited.borrow().clone().unwrap_or_else(|| "unknown".into());
    let prefix = request_id
        .map(|id| format!("RequestId: {id} "))
        .unwrap_or_default();
    if guard.cgroup().is_some_and(InstanceCgroup::oom_killed) {
        return FunctionError::new(
            "Runtime.OutOfMemory",
            format!("{prefix}Error: Runtime exited with error: {how} (out of memory: memory_mb = {memory_mb} exceeded)"),
        );
    }
    let mut err = FunctionError::new(
        "Runtime.ExitError",
        format!("{prefix}Error: Runtime exited with error: {how}"),
    );
    err.stack_trace = output.stderr_tail();
    err
}

/// Resolves once the process has exited.
pub(crate) async fn wait_exit(exited: &mut watch::Receiver<Option<String>>) {
    let _ = exited.wait_for(|e| e.is_some()).await;
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
                request_id: inv.request_id.to_string(),
                body: inv.body,
                content_type: inv
                    .content_type
                    .as_deref()
                    .filter(|c| !c.is_empty())
                    .unwrap_or("application/json")
                    .to_string(),
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

    fn restored(&self) -> bool {
        self.restored
    }

    fn max_memory_used_mb(&self) -> Option<u64> {
        let from_cgroup = || self.guard.cgroup().and_then(InstanceCgroup::peak_bytes);
        let from_process = || process_peak_bytes(self.guard.pid);
        // A restored instance's cgroup holds only what it allocated after the fork; its
        // peak resident set also counts the template's pages it uses, shared.
        let peak = if self.template.is_some() {
            from_process().or_else(from_cgroup)
        } else {
            from_cgroup().or_else(from_process)
        };
        peak.map(|b| b.div_ceil(1024 * 1024))
    }
}
