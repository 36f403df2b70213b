//! A snap-start instance: forked from its version's [`Template`] instead of initialized.
//!
//! modelfn makes the instance's own cgroups, a socket pair for its Runtime API and pipes
//! for its output, and asks the template to fork. Once the child has said hello, modelfn
//! moves it into its cgroups; only the go byte lets it run, so nothing it runs after the
//! restore is charged elsewhere. Moving a process between cgroups costs the kernel a
//! grace period (10–15 ms with cgroup v1), so each template keeps one child prepared
//! ahead: a restore takes it and sends the go byte, and the next is prepared in the
//! background. The instance shares the template's sandbox (root, `/tmp`, pid and network
//! namespaces, uid) with the version's other instances: see SECURITY.md.

use crate::config::ProcessConfig;
use crate::handshake::pipe;
use crate::instance::{Parts, ProcessInstance};
use crate::launch::{internal, Api};
use crate::output::OutputCapture;
use crate::sandbox::SandboxGuard;
use crate::template::{Child, Template};
use modelfn_core::{FunctionSpec, InvokeError};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A forked child in its own cgroups, waiting for its go byte.
pub(crate) struct Prepared {
    guard: SandboxGuard,
    child: Child,
    api: std::os::unix::net::UnixStream,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

fn receiver(fd: OwnedFd) -> Result<tokio::net::unix::pipe::Receiver, InvokeError> {
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        .map_err(internal("reading the instance's output"))
}

/// Forks a child from `template` into cgroups of its own; it waits for its go byte.
pub(crate) async fn prepare(
    template: &Template,
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
) -> Result<Prepared, InvokeError> {
    let mut guard = crate::launch::new_guard(spec, cfg)?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()
        .map_err(internal("opening the instance's Runtime API"))?;
    let (out_r, out_w) = pipe().map_err(internal("opening the instance's stdout"))?;
    let (err_r, err_w) = pipe().map_err(internal("opening the instance's stderr"))?;
    let instance_id = uuid::Uuid::new_v4().simple().to_string();
    let env = [(
        "AWS_LAMBDA_LOG_STREAM_NAME".to_string(),
        format!("[{}]{instance_id}", spec.version),
    )];
    let child = template
        .fork(&env, [OwnedFd::from(theirs), out_w, err_w])
        .await
        .map_err(internal("forking from the snap-start template"))?;
    guard.pid = child.host_pid;
    guard.pidfd = crate::sandbox::pidfd(child.host_pid);
    if let Some(cg) = guard.cgroup() {
        cg.adopt(child.host_pid)
            .map_err(internal("moving the instance into its cgroups"))?;
    }
    Ok(Prepared {
        guard,
        child,
        api: ours,
        stdout: out_r,
        stderr: err_r,
    })
}

/// Starts an instance from `template`: its prepared child when it has one alive (and
/// the next one prepared in the background), else one forked now; then waits until it
/// asks for its first event. `restored` is false when this start also initialized the
/// template (its cost is then an init, as Lambda reports the first start of a version).
pub(crate) async fn start(
    template: Arc<Template>,
    restored: bool,
    spec: Arc<FunctionSpec>,
    cfg: Arc<ProcessConfig>,
) -> Result<ProcessInstance, InvokeError> {
    let t0 = std::time::Instant::now();
    let prepared = match template.take_spare() {
        Some(p) => p,
        None => prepare(&template, &spec, &cfg).await?,
    };
    let took = t0.elapsed();
    let (t, s, c) = (template.clone(), spec.clone(), cfg.clone());
    tokio::spawn(async move {
        if let Err(e) = t.refill_spare(|| prepare(&t, &s, &c)).await {
            tracing::debug!(error = %e, "snap start: no child prepared ahead");
        }
    });
    let instance = run(prepared, template, restored, &spec, &cfg).await?;
    tracing::debug!(
        function = %spec.manifest.name,
        child_us = took.as_micros() as u64,
        to_first_next_us = (t0.elapsed() - took).as_micros() as u64,
        "restored an instance"
    );
    Ok(instance)
}

/// Lets a prepared child run, serves its Runtime API and output, and waits for its
/// first `next`.
async fn run(
    p: Prepared,
    template: Arc<Template>,
    restored: bool,
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
) -> Result<ProcessInstance, InvokeError> {
    let Prepared {
        mut guard,
        child,
        api: ours,
        stdout,
        stderr,
    } = p;
    (&ours)
        .write_all(b"G")
        .map_err(internal("starting the restored instance"))?;
    ours.set_nonblocking(true)
        .map_err(internal("serving the instance's Runtime API"))?;
    let stream = tokio::net::UnixStream::from_std(ours)
        .map_err(internal("serving the instance's Runtime API"))?;
    let function = spec.manifest.name.to_string();
    let api = Api::new(&function, &cfg.region);
    guard.tasks.push(tokio::spawn(crate::api::serve_one(
        stream,
        crate::api::router(api.state.clone()),
    )));
    let output = OutputCapture::start(
        receiver(stdout)?,
        receiver(stderr)?,
        api.output_target(&function, cfg),
    );
    let dead = Arc::new(AtomicBool::new(false));
    let (dead_flag, mut exited) = (dead.clone(), child.exited.clone());
    guard.tasks.push(tokio::spawn(async move {
        crate::instance::wait_exit(&mut exited).await;
        dead_flag.store(true, Ordering::SeqCst);
    }));
    ProcessInstance::from_parts(Parts {
        memory_mb: spec.manifest.memory_mb,
        api,
        dead,
        exited: child.exited,
        output,
        guard,
        template: Some(template),
        restored,
    })
    .await
}

impl Prepared {
    /// Whether the child still waits (it could have been killed meanwhile).
    pub fn alive(&self) -> bool {
        self.child.exited.borrow().is_none()
    }
}
