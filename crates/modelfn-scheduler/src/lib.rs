//! The scheduler owns the instances of every deployed function version. The gateway
//! hands it an `Invocation`; it finds the function, takes a warm instance or starts one
//! (the cold start), enforces the function's timeout, writes Lambda's `START`/`END`/
//! `REPORT` lines, and reports what happened.
//!
//! Two kinds of instance pools, chosen by the runtime:
//! - *shared* (ONNX models): one instance serves every invocation at once;
//! - *exclusive* (function processes, as on Lambda): an instance runs one invocation at
//!   a time; concurrent invocations take other idle instances or start new ones. An
//!   instance that timed out or died is dropped (its process killed), never reused.
//!
//! A failed start is remembered and answered again, without starting anything, for a
//! backoff that doubles from 1 s to 30 s: an import error is reported on every call until
//! it is fixed, without a crash loop.
//!
//! It talks to execution only through the `Runtime` and `Instance` traits of
//! `modelfn-core`.

use modelfn_core::{
    FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, LogSink, LogStream, Runtime,
    RuntimeKind,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// How long an instance may take to initialize, as Lambda's init phase (10 s), unless the
/// function's own timeout is longer.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most instances of one code function at once (until per-function limits exist).
/// Further concurrent calls wait for a free instance up to their timeout, then get 429.
pub const MAX_EXCLUSIVE_INSTANCES: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one invocation cost, for logs, headers and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationReport {
    pub version: u64,
    pub cold_start: bool,
    /// Set on a cold start: how long the instance took to start.
    pub init_duration: Option<Duration>,
    /// Time in the instance (excluding init).
    pub duration: Duration,
}

/// Counters of one function, as `describe` shows them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FunctionStats {
    pub state: &'static str,
    pub instances: usize,
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub last_init_duration_ms: Option<f64>,
}

#[derive(Default)]
struct Pool {
    /// The one instance of a shared pool.
    shared: Option<Arc<dyn Instance>>,
    /// Idle instances of an exclusive pool.
    idle: Vec<Arc<dyn Instance>>,
    /// Instances of an exclusive pool running an invocation.
    busy: usize,
}

struct InitFailure {
    error: InvokeError,
    retry_at: Instant,
    backoff: Duration,
}

/// One deployed function version and its instances.
struct Slot {
    spec: Arc<FunctionSpec>,
    shared: bool,
    pool: Mutex<Pool>,
    /// Caps the instances of an exclusive pool (one permit per running invocation).
    slots: Arc<tokio::sync::Semaphore>,
    start_lock: tokio::sync::Mutex<()>,
    init_failure: Mutex<Option<InitFailure>>,
    invocations: AtomicU64,
    errors: AtomicU64,
    cold_starts: AtomicU64,
    last_init_us: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    fn new(spec: Arc<FunctionSpec>, shared: bool) -> Self {
        Slot {
            spec,
            shared,
            pool: Mutex::new(Pool::default()),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_EXCLUSIVE_INSTANCES)),
            start_lock: tokio::sync::Mutex::new(()),
            init_failure: Mutex::new(None),
            invocations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cold_starts: AtomicU64::new(0),
            last_init_us: AtomicU64::new(0),
        }
    }

    /// A warm instance, if one is free.
    fn take_warm(&self) -> Option<Arc<dyn Instance>> {
        let mut pool = lock(&self.pool);
        if self.shared {
            return pool.shared.clone().filter(|i| i.healthy());
        }
        while let Some(inst) = pool.idle.pop() {
            if inst.healthy() {
                pool.busy += 1;
                return Some(inst);
            }
        }
        None
    }

    /// Gives an instance back after an invocation; `reusable` is false after a timeout.
    fn give_back(&self, inst: Arc<dyn Instance>, reusable: bool) {
        let mut pool = lock(&self.pool);
        let keep = reusable && inst.healthy();
        if self.shared {
            if !keep && pool.shared.as_ref().is_some_and(|s| Arc::ptr_eq(s, &inst)) {
                pool.shared = None;
            }
            return;
        }
        pool.busy = pool.busy.saturating_sub(1);
        if keep {
            pool.idle.push(inst);
        }
    }

    fn remembered_failure(&self) -> Option<InvokeError> {
        let f = lock(&self.init_failure);
        f.as_ref()
            .filter(|f| Instant::now() < f.retry_at)
            .map(|f| f.error.clone())
    }

    fn remember_failure(&self, error: &InvokeError) {
        let mut f = lock(&self.init_failure);
        let backoff = f
            .as_ref()
            .map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
        *f = Some(InitFailure {
            error: error.clone(),
            retry_at: Instant::now() + backoff,
            backoff,
        });
    }
}

/// Routes invocations to instances. Share it behind an `Arc`.
pub struct Scheduler {
    runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
    functions: RwLock<HashMap<String, Arc<Slot>>>,
    logs: Arc<dyn LogSink>,
}

impl Scheduler {
    pub fn new(runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>, logs: Arc<dyn LogSink>) -> Self {
        Scheduler {
            runtimes,
            functions: RwLock::new(HashMap::new()),
            logs,
        }
    }

    fn runtime(&self, kind: RuntimeKind) -> Result<&Arc<dyn Runtime>, InvokeError> {
        self.runtimes.get(&kind).ok_or_else(|| {
            InvokeError::Internal(format!("no runtime for '{}' in this server", kind.as_str()))
        })
    }

    async fn start(&self, spec: &Arc<FunctionSpec>) -> Result<Arc<dyn Instance>, InvokeError> {
        let runtime = self.runtime(spec.manifest.runtime)?;
        let limit = init_timeout(spec);
        match tokio::time::timeout(limit, runtime.start(spec.clone())).await {
            Ok(result) => result,
            Err(_) => Err(InvokeError::init(format!(
                "the function did not initialize within {:.2} seconds",
                limit.as_secs_f64()
            ))),
        }
    }

    /// Starts one instance of `spec` and stops it again: proves a version can start before
    /// it replaces anything. Answers how long the start took.
    pub async fn validate(&self, spec: Arc<FunctionSpec>) -> Result<Duration, InvokeError> {
        let t0 = Instant::now();
        self.start(&spec).await.map(|_instance| t0.elapsed())
    }

    /// Makes `spec` the version that serves its function; the previous version's instances
    /// finish what they are running and are dropped.
    pub fn install(&self, spec: Arc<FunctionSpec>) -> Result<(), InvokeError> {
        let shared = self.runtime(spec.manifest.runtime)?.shared_instances();
        let name = spec.manifest.name.to_string();
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name, Arc::new(Slot::new(spec, shared)));
        Ok(())
    }

    /// Stops serving a function; answers whether it was served.
    pub fn remove(&self, name: &str) -> bool {
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name).is_some()
    }

    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// The version serving `name`, if any.
    pub fn spec(&self, name: &str) -> Option<Arc<FunctionSpec>> {
        self.slot(name).map(|s| s.spec.clone())
    }

    /// Counters of `name`.
    pub fn stats(&self, name: &str) -> Option<FunctionStats> {
        let slot = self.slot(name)?;
        let init_us = slot.last_init_us.load(Ordering::Relaxed);
        let pool = lock(&slot.pool);
        let instances = pool.shared.iter().count() + pool.idle.len() + pool.busy;
        Some(FunctionStats {
            state: if instances > 0 { "warm" } else { "cold" },
            instances,
            invocations: slot.invocations.load(Ordering::Relaxed),
            errors: slot.errors.load(Ordering::Relaxed),
            cold_starts: slot.cold_starts.load(Ordering::Relaxed),
            last_init_duration_ms: (init_us > 0).then(|| init_us as f64 / 1000.0),
        })
    }

    /// Runs one invocation of `name`.
    pub async fn invoke(
        &self,
        name: &str,
        inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let slot = self
            .slot(name)
            .ok_or_else(|| InvokeError::FunctionNotFound(name.to_string()))?;
        slot.invocations.fetch_add(1, Ordering::Relaxed);
        let result = self.run(&slot, inv).await;
        if result.is_err() {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// A warm instance, or a new one (the cold start, timed).
    async fn acquire(
        &self,
        slot: &Slot,
    ) -> Result<(Arc<dyn Instance>, Option<Duration>), InvokeError> {
        if let Some(inst) = slot.take_warm() {
            return Ok((inst, None));
        }
        // Shared pools start one instance at a time; exclusive pools start one per caller.
        let _one_start = if slot.shared {
            Some(slot.start_lock.lock().await)
        } else {
            None
        };
        if let Some(inst) = slot.take_warm() {
            return Ok((inst, None));
        }
        if let Some(e) = slot.remembered_failure() {
            return Err(e);
        }
        let t0 = Instant::now();
        let inst = match self.start(&slot.spec).await {
            Ok(inst) => inst,
            Err(e) => {
                slot.remember_failure(&e);
                return Err(e);
            }
        };
        let took = t0.elapsed();
        *lock(&slot.init_failure) = None;
        slot.cold_starts.fetch_add(1, Ordering::Relaxed);
        slot.last_init_us
            .store(took.as_micros().max(1) as u64, Ordering::Relaxed);
        tracing::info!(function = %slot.spec.manifest.name, version = slot.spec.version, init_ms = took.as_secs_f64() * 1e3, "cold start");
        let mut pool = lock(&slot.pool);
        if slot.shared {
            pool.shared = Some(inst.clone());
        } else {
            pool.busy += 1;
        }
        Ok((inst, Some(took)))
    }

    async fn run(
        &self,
        slot: &Slot,
        mut inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let spec = &slot.spec;
        let name = spec.manifest.name.as_str();
        let log = !slot.shared;
        let id = inv.request_id.clone();
        if log {
            self.logs.line(
                name,
                Some(&id),
                LogStream::Platform,
                &format!("START RequestId: {id} Version: {}", spec.version),
            );
        }
        let timeout = Duration::from_millis(spec.manifest.timeout_ms);
        // An exclusive pool runs at most MAX_EXCLUSIVE_INSTANCES invocations at once.
        let _permit = if slot.shared {
            None
        } else {
            match tokio::time::timeout(timeout, slot.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => {
                    let e = InvokeError::Throttled {
                        message: format!("function '{name}' has {MAX_EXCLUSIVE_INSTANCES} instances busy; try again"),
                        retry_after: Duration::from_secs(1),
                    };
                    if log {
                        self.logs.line(
                            name,
                            Some(&id),
                            LogStream::Platform,
                            &format!("END RequestId: {id}"),
                        );
                    }
                    return Err(e);
                }
            }
        };
        let (instance, init_duration) = match self.acquire(slot).await {
            Ok(x) => x,
            Err(e) => {
                if log {
                    self.logs
                        .line(name, Some(&id), LogStream::Platform, &format!("{e}"));
                    self.logs.line(
                        name,
                        Some(&id),
                        LogStream::Platform,
                        &format!("END RequestId: {id}"),
                    );
                }
                return Err(e);
            }
        };
        let t0 = Instant::now();
        inv.deadline = Some((t0 + timeout).into_std());
        let result = match tokio::time::timeout(timeout, instance.invoke(inv)).await {
            Ok(r) => r,
            Err(_) => Err(InvokeError::Timeout(timeout)),
        };
        let duration = t0.elapsed();
        let timed_out = matches!(result, Err(InvokeError::Timeout(_)));
        if log {
            if timed_out {
                self.logs.line(
                    name,
                    Some(&id),
                    LogStream::Platform,
                    &format!(
                        "RequestId: {id} Error: Task timed out after {:.2} seconds",
                        timeout.as_secs_f64()
                    ),
                );
            }
            self.logs.line(
                name,
                Some(&id),
                LogStream::Platform,
                &format!("END RequestId: {id}"),
            );
            self.logs.line(
                name,
                Some(&id),
                LogStream::Platform,
                &report_line(
                    &id,
                    duration,
                    spec.manifest.memory_mb,
                    instance.max_memory_used_mb(),
                    init_duration,
                ),
            );
        }
        slot.give_back(instance, !timed_out);
        let output = result?;
        let report = InvocationReport {
            version: spec.version,
            cold_start: init_duration.is_some(),
            init_duration,
            duration,
        };
        Ok((output, report))
    }
}

/// Lambda's `REPORT` line.
fn report_line(
    id: &str,
    duration: Duration,
    memory_mb: u32,
    max_used_mb: Option<u64>,
    init: Option<Duration>,
) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    let mut line = format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB",
        ms.ceil().max(1.0) as u64
    );
    if let Some(used) = max_used_mb {
        line += &format!("\tMax Memory Used: {used} MB");
    }
    if let Some(init) = init {
        line += &format!("\tInit Duration: {:.2} ms", init.as_secs_f64() * 1e3);
    }
    line
}

fn init_timeout(spec: &FunctionSpec) -> Duration {
    INIT_TIMEOUT.max(Duration::from_millis(spec.manifest.timeout_ms))
}
