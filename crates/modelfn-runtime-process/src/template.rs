//! Snap start, modelfn's side: one template process per function version, initialized
//! once and kept, from which new instances are forked ([`crate::restore`]).
//!
//! A template starts like any instance (its own sandbox, cgroups and Runtime API), with a
//! control socket ([`crate::control`]). The Python client imports the handler, primes it,
//! runs the before-snapshot hooks and reports ready (`R`) or why it cannot be kept (`F`);
//! the Runtime API then closes. Each fork request carries the new instance's Runtime API
//! connection, stdout and stderr; the child says hello (`H`) and the template reports
//! each child's end (`X`). A hello is believed only from a direct child of the template,
//! in the template's pid namespace, as the kernel's credentials show.
//!
//! [`Templates`] holds at most one template per function version, for its current
//! configuration. A template lives while instances forked from it live, and
//! [`TEMPLATE_IDLE`] after the last one; a refusal is remembered for the version.

use crate::config::ProcessConfig;
use crate::control;
use crate::instance::{exit_error, wait_exit};
use crate::launch::{internal, launch, Launched, TemplateLaunch};
use crate::output::OutputCapture;
use crate::sandbox::SandboxGuard;
use modelfn_core::{FunctionSpec, InvokeError};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How long a template is kept once no instance forked from it is alive.
pub const TEMPLATE_IDLE: Duration = Duration::from_secs(600);
/// How long a fork may take to say hello.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// A forked child, as modelfn sees it.
pub(crate) struct Child {
    /// Its pid in modelfn's namespace.
    pub host_pid: u32,
    /// Set to how it ended, once the template reports it.
    pub exited: watch::Receiver<Option<String>>,
}

/// What the control reader shares with the template.
#[derive(Default)]
struct Shared {
    zygote: AtomicU32,
    pid_namespace: Mutex<Option<std::path::PathBuf>>,
    ready: Mutex<Option<oneshot::Sender<Result<(), String>>>>,
    hello: Mutex<Option<oneshot::Sender<Result<Child, String>>>>,
    /// Live children by their pid inside the sandbox.
    exits: Mutex<HashMap<u32, watch::Sender<Option<String>>>>,
    alive: AtomicBool,
}

/// One version's initialized template process.
pub struct Template {
    /// The template's sandbox; its drop kills the template and every child.
    _guard: SandboxGuard,
    _output: OutputCapture,
    control: Arc<OwnedFd>,
    shared: Arc<Shared>,
    forks: tokio::sync::Mutex<()>,
    last_used: Mutex<Instant>,
    /// A child forked ahead, in its own cgroups, for the next restore.
    spare: Mutex<Option<crate::restore::Prepared>>,
    refilling: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What makes a template reusable: the version and everything its process was given
/// (its environment included: a model-store revision is in it).
fn fingerprint(spec: &FunctionSpec) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&spec.manifest)
        .unwrap_or_default()
        .hash(&mut h);
    spec.version.hash(&mut h);
    spec.code_dir.hash(&mut h);
    spec.code_sha256.hash(&mut h);
    spec.layers.hash(&mut h);
    spec.credentials.hash(&mut h);
    if let Some(m) = &spec.model {
        (&m.name, m.revision, &m.sha256, &m.path).hash(&mut h);
    }
    h.finish()
}

impl Shared {
    /// Handles one message from the template's sandbox.
    fn handle(&self, msg: control::Received) {
        let (kind, rest) = match msg.body.split_first() {
            Some((k, rest)) => (*k, String::from_utf8_lossy(rest).into_owned()),
            None => return,
        };
        let zygote = self.zygote.load(Ordering::SeqCst);
        match kind {
            b'R' | b'F' if zygote == 0 => {
                self.zygote.store(msg.pid, Ordering::SeqCst);
                let r = if kind == b'R' { Ok(()) } else { Err(rest) };
                if let Some(tx) = lock(&self.ready).take() {
                    let _ = tx.send(r);
                }
            }
            b'H' if zygote != 0 && msg.pid != zygote => {
                let same_ns = control::pid_namespace(msg.pid).is_some()
                    && control::pid_namespace(msg.pid) == *lock(&self.pid_namespace);
                let (Ok(ns_pid), true, true) = (
                    rest.trim().parse::<u32>(),
                    control::parent_of(msg.pid) == Some(zygote),
                    same_ns,
                ) else {
                    tracing::warn!(pid = msg.pid, "snap start: a hello from a process that is not the template's child, ignored");
                    return;
                };
                let (tx, exited) = watch::channel(None);
                lock(&self.exits).insert(ns_pid, tx);
                if let Some(waiting) = lock(&self.hello).take() {
                    let _ = waiting.send(Ok(Child {
                        host_pid: msg.pid,
                        exited,
                    }));
                }
            }
            b'X' if msg.pid == zygote => {
                let mut parts = rest.split_whitespace().map(str::parse::<i32>);
                let (Some(Ok(pid)), Some(Ok(status))) = (parts.next(), parts.next()) else {
                    return;
                };
                let how = crate::lambda::describe_exit(std::process::ExitStatus::from_raw(status));
                match lock(&self.exits).remove(&(pid as u32)) {
                    Some(tx) => {
                        let _ = tx.send(Some(how));
                    }
                    None => {
                        // A child that died before its hello.
                        if let Some(waiting) = lock(&self.hello).take() {
                            let _ = waiting.send(Err(format!(
                                "the restored process exited before it started: {how}"
                            )));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The template is gone: so is every child (they lived in its pid namespace).
    fn ended(&self) {
        self.alive.store(false, Ordering::SeqCst);
        for (_, tx) in lock(&self.exits).drain() {
            let _ = tx.send(Some("the snap-start template exited".into()));
        }
        if let Some(tx) = lock(&self.ready).take() {
            let _ = tx.send(Err("the template exited before it was ready".into()));
        }
        if let Some(tx) = lock(&self.hello).take() {
            let _ = tx.send(Err("the template exited".into()));
        }
    }
}

/// The init error the template reports on its Runtime API (`None` if the API stopped).
async fn init_error(
    status: &mut watch::Receiver<crate::api::Status>,
) -> Option<modelfn_core::FunctionError> {
    let s = status
        .wait_for(|s| matches!(s, crate::api::Status::InitError(_)))
        .await
        .ok()?;
    match &*s {
        crate::api::Status::InitError(e) => Some(e.clone()),
        crate::api::Status::Starting | crate::api::Status::Ready => None,
    }
}

/// How a template start ended.
pub(crate) enum Started {
    Ready(Arc<Template>),
    /// The template declared itself not fork-safe; instances start without it.
    Refused(String),
}

impl Template {
    async fn start(
        spec: &FunctionSpec,
        cfg: &ProcessConfig,
        leftover: &Mutex<Option<Launched>>,
    ) -> Result<Started, InvokeError> {
        let (ours, theirs) =
            control::pair().map_err(internal("opening the template's control socket"))?;
        // One variable, which the client takes out of its environment before the
        // function's code is imported.
        let snap = serde_json::json!({
            "fd": theirs.as_raw_fd(),
            "prime": spec.manifest.snap_start_prime.as_ref().map(|p| format!("/var/task/{p}")),
            "timeout_ms": spec.manifest.timeout_ms,
        });
        let env = vec![
            ("MODELFN_SNAP".to_string(), snap.to_string()),
            (
                "AWS_LAMBDA_INITIALIZATION_TYPE".to_string(),
                "snap-start".to_string(),
            ),
        ];
        let shared = Arc::new(Shared {
            alive: AtomicBool::new(true),
            ..Shared::default()
        });
        let (ready_tx, ready) = oneshot::channel();
        *lock(&shared.ready) = Some(ready_tx);
        let launched = launch(
            spec,
            cfg,
            Some(TemplateLaunch {
                control_fd: theirs.as_raw_fd(),
                env,
            }),
        )
        .await?;
        drop(theirs);
        *lock(&shared.pid_namespace) = control::pid_namespace(launched.guard.sandbox_pid);
        let control = Arc::new(ours);
        let (reader_sock, reader_shared) = (control.clone(), shared.clone());
        std::thread::Builder::new()
            .name("modelfn-template".into())
            .spawn(move || {
                while let Ok(Some(msg)) = control::recv(&reader_sock) {
                    reader_shared.handle(msg);
                }
                reader_shared.ended();
            })
            .map_err(internal("starting the template's reader"))?;

        let mut status = launched.api.status.clone();
        let mut exited = launched.exited.clone();
        let outcome = tokio::select! {
            r = ready => r.unwrap_or_else(|_| Err("the template's reader stopped".into())),
            error = init_error(&mut status) => {
                match error {
                    Some(e) => return Err(InvokeError::InitFailed(e)),
                    None => Err("the template's Runtime API stopped".into()),
                }
            }
            _ = wait_exit(&mut exited) => {
                launched.output.drain().await;
                return Err(InvokeError::InitFailed(exit_error(
                    &launched.exited,
                    &launched.guard,
                    &launched.output,
                    spec.manifest.memory_mb,
                    None,
                )));
            }
        };
        match outcome {
            Ok(()) => {
                // The template never asks for events: its Runtime API closes.
                launched.api_task.abort();
                Ok(Started::Ready(Arc::new(Template {
                    _guard: launched.guard,
                    _output: launched.output,
                    control,
                    shared,
                    forks: tokio::sync::Mutex::new(()),
                    last_used: Mutex::new(Instant::now()),
                    spare: Mutex::new(None),
                    refilling: AtomicBool::new(false),
                })))
            }
            Err(reason) => {
                // The process, initialized, goes on as an ordinary instance.
                tracing::warn!(function = %spec.manifest.name, version = spec.version, %reason, "snap start is off for this version");
                *lock(leftover) = Some(launched);
                Ok(Started::Refused(reason))
            }
        }
    }

    /// The child prepared ahead, if one is waiting alive.
    pub(crate) fn take_spare(&self) -> Option<crate::restore::Prepared> {
        lock(&self.spare)
            .take()
            .filter(crate::restore::Prepared::alive)
    }

    /// Prepares the next child ahead with `prepare`, unless one waits or is on its way.
    pub(crate) async fn refill_spare<F, Fut>(&self, prepare: F) -> Result<(), InvokeError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<crate::restore::Prepared, InvokeError>>,
    {
        if lock(&self.spare).is_some() || self.refilling.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let made = prepare().await;
        self.refilling.store(false, Ordering::SeqCst);
        *lock(&self.spare) = Some(made?);
        Ok(())
    }

    /// Marks the template used now (an instance forked from it has just ended).
    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    pub fn alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// Forks a new instance, handing it `fds` (its Runtime API connection, stdout and
    /// stderr) and the environment values that are its own.
    pub(crate) async fn fork(
        &self,
        env: &[(String, String)],
        fds: [OwnedFd; 3],
    ) -> std::io::Result<Child> {
        let _one_at_a_time = self.forks.lock().await;
        *lock(&self.last_used) = Instant::now();
        let (tx, hello) = oneshot::channel();
        *lock(&self.shared.hello) = Some(tx);
        let body = serde_json::to_vec(&env.iter().cloned().collect::<HashMap<_, _>>())
            .map_err(std::io::Error::other)?;
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        control::send(&self.control, &body, &raw)?;
        drop(fds);
        match tokio::time::timeout(HELLO_WITHIN, hello).await {
            Ok(Ok(Ok(child))) => Ok(child),
            Ok(Ok(Err(why))) => Err(std::io::Error::other(why)),
            Ok(Err(_)) | Err(_) => {
                lock(&self.shared.hello).take();
                Err(std::io::Error::other(
                    "the template did not fork an instance in time",
                ))
            }
        }
    }
}

/// One function's template slot: started once however many cold starts wait for it.
struct Slot {
    key: u64,
    cell: tokio::sync::OnceCell<Started>,
    /// A refusing template's process, initialized, for the start that made it.
    leftover: Mutex<Option<Launched>>,
}

impl Slot {
    fn new(key: u64) -> Arc<Slot> {
        Arc::new(Slot {
            key,
            cell: tokio::sync::OnceCell::new(),
            leftover: Mutex::new(None),
        })
    }
}

/// What a cold start gets from [`Templates::get`].
pub(crate) enum Snap {
    /// The template to fork from, and whether this start waited for its init.
    Template(Arc<Template>, bool),
    /// The version refused snap start; the refusing process itself, when this start
    /// made it (it serves as an ordinary instance).
    Refused(Option<Box<Launched>>),
}

/// The templates of this server, one per function version at most.
#[derive(Default)]
pub struct Templates {
    /// By function and version: versions served side by side (weighted aliases) keep a
    /// template each; a version's new configuration replaces its slot.
    slots: Mutex<HashMap<(String, u64), Arc<Slot>>>,
}

impl Templates {
    /// The function's template for this spec: started on first use, shared by every cold
    /// start of the version.
    pub(crate) async fn get(
        &self,
        spec: &FunctionSpec,
        cfg: &ProcessConfig,
    ) -> Result<Snap, InvokeError> {
        let key = fingerprint(spec);
        let name = (spec.manifest.name.to_string(), spec.version);
        self.sweep();
        for _ in 0..2 {
            let slot = {
                let mut slots = lock(&self.slots);
                let slot = slots.entry(name.clone()).or_insert_with(|| Slot::new(key));
                if slot.key != key {
                    *slot = Slot::new(key);
                }
                slot.clone()
            };
            let waited = !slot.cell.initialized();
            let started = slot
                .cell
                .get_or_try_init(|| Template::start(spec, cfg, &slot.leftover))
                .await?;
            match started {
                Started::Ready(t) if t.alive() => return Ok(Snap::Template(t.clone(), waited)),
                Started::Ready(_) => {
                    // It died (killed, or out of memory): start another.
                    let mut slots = lock(&self.slots);
                    if slots.get(&name).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                        slots.remove(&name);
                    }
                }
                Started::Refused(_) => {
                    return Ok(Snap::Refused(lock(&slot.leftover).take().map(Box::new)))
                }
            }
        }
        Err(InvokeError::Internal(
            "the snap-start template keeps exiting".into(),
        ))
    }

    /// Drops templates that are dead, or idle past [`TEMPLATE_IDLE`] with no instance.
    pub fn sweep(&self) {
        let mut slots = lock(&self.slots);
        slots.retain(|_, slot| match slot.cell.get() {
            Some(Started::Ready(t)) => {
                let idle = lock(&t.last_used).elapsed() > TEMPLATE_IDLE;
                t.alive() && !(Arc::strong_count(t) == 1 && idle)
            }
            Some(Started::Refused(_)) | None => true,
        });
    }

    /// Why a version refused snap start, if it did.
    pub fn refusal(&self, function: &str, version: u64) -> Option<String> {
        match lock(&self.slots)
            .get(&(function.to_string(), version))?
            .cell
            .get()?
        {
            Started::Refused(why) => Some(why.clone()),
            Started::Ready(_) => None,
        }
    }

    /// Live templates (for tests and the start-up log).
    pub fn count(&self) -> usize {
        lock(&self.slots)
            .values()
            .filter(|s| matches!(s.cell.get(), Some(Started::Ready(t)) if t.alive()))
            .count()
    }
}
