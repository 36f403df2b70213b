//! A snap-start instance: forked from its version's [`Template`] instead of initialized.
//!
//! modelfn makes the instance's own cgroups, a socket pair for its Runtime API and pipes
//! for its output, and asks the template to fork. Once the child has said hello, modelfn
//! moves it into its cgroups and only then sends the go byte, so nothing it runs after the
//! restore is charged elsewhere. The instance shares the template's sandbox (root, `/tmp`,
//! pid and network namespaces, uid) with the version's other instances: see SECURITY.md.

use crate::cgroup::Limits;
use crate::config::ProcessConfig;
use crate::handshake::pipe;
use crate::instance::{Parts, ProcessInstance};
use crate::launch::{internal, Api};
use crate::output::OutputCapture;
use crate::sandbox::SandboxGuard;
use crate::template::Template;
use modelfn_core::{FunctionSpec, InvokeError};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn receiver(fd: OwnedFd) -> Result<tokio::net::unix::pipe::Receiver, InvokeError> {
    tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        .map_err(internal("reading the instance's output"))
}

/// Forks an instance from `template` and waits until it asks for its first event.
/// `restored` is false when this start also initialized the template (its cost is then
/// an init, as Lambda reports the first start of a version).
pub(crate) async fn start(
    template: Arc<Template>,
    restored: bool,
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
) -> Result<ProcessInstance, InvokeError> {
    let m = &spec.manifest;
    let function = m.name.to_string();
    let cgroup = cfg
        .cgroups
        .create(Limits {
            memory_mb: m.memory_mb,
            pids: cfg.pids_max,
        })
        .map_err(internal("cannot create the instance's cgroups"))?;
    let mut guard = SandboxGuard::new(function.clone(), cgroup);
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
    (&ours)
        .write_all(b"G")
        .map_err(internal("starting the restored instance"))?;
    ours.set_nonblocking(true)
        .map_err(internal("serving the instance's Runtime API"))?;
    let stream = tokio::net::UnixStream::from_std(ours)
        .map_err(internal("serving the instance's Runtime API"))?;

    let api = Api::new(&function, &cfg.region);
    guard.tasks.push(tokio::spawn(crate::api::serve_one(
        stream,
        crate::api::router(api.state.clone()),
    )));
    let output = OutputCapture::start(
        receiver(out_r)?,
        receiver(err_r)?,
        api.output_target(&function, cfg),
    );
    let dead = Arc::new(AtomicBool::new(false));
    let (dead_flag, mut exited) = (dead.clone(), child.exited.clone());
    guard.tasks.push(tokio::spawn(async move {
        crate::instance::wait_exit(&mut exited).await;
        dead_flag.store(true, Ordering::SeqCst);
    }));
    ProcessInstance::from_parts(Parts {
        memory_mb: m.memory_mb,
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
