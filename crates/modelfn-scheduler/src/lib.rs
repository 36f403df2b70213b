//! The scheduler owns the instances of every deployed function version. The gateway
//! hands it an `Invocation`; it finds the function, starts an instance if none is warm
//! (the cold start), enforces the function's timeout and reports what happened.
//!
//! It talks to execution only through the `Runtime` and `Instance` traits of
//! `modelfn-core`, so ONNX models and function processes are scheduled alike.

use modelfn_core::{
    FunctionSpec, Instance, Invocation, InvocationOutput, InvokeError, Runtime, RuntimeKind,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// How long an instance may take to initialize, as Lambda's init phase (10 s), unless the
/// function's own timeout is longer.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

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
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub last_init_duration_ms: Option<f64>,
}

/// One deployed function version and its (at most one, for now) warm instance.
struct Slot {
    spec: Arc<FunctionSpec>,
    instance: OnceCell<Arc<dyn Instance>>,
    invocations: AtomicU64,
    errors: AtomicU64,
    cold_starts: AtomicU64,
    last_init_us: AtomicU64,
}

impl Slot {
    fn new(spec: Arc<FunctionSpec>) -> Self {
        Slot {
            spec,
            instance: OnceCell::new(),
            invocations: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            cold_starts: AtomicU64::new(0),
            last_init_us: AtomicU64::new(0),
        }
    }
}

/// Routes invocations to instances. Cheap to share behind an `Arc`.
pub struct Scheduler {
    runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
    functions: RwLock<HashMap<String, Arc<Slot>>>,
}

impl Scheduler {
    pub fn new(runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>) -> Self {
        Scheduler {
            runtimes,
            functions: RwLock::new(HashMap::new()),
        }
    }

    fn runtime(&self, kind: RuntimeKind) -> Result<&Arc<dyn Runtime>, InvokeError> {
        self.runtimes.get(&kind).ok_or_else(|| {
            InvokeError::Internal(format!("no runtime for '{}' in this server", kind.as_str()))
        })
    }

    /// Starts one instance of `spec` and stops it again: proves a version can start before
    /// it replaces anything.
    pub async fn validate(&self, spec: Arc<FunctionSpec>) -> Result<Duration, InvokeError> {
        let started = Instant::now();
        let runtime = self.runtime(spec.manifest.runtime)?;
        let limit = init_timeout(&spec);
        match tokio::time::timeout(limit, runtime.start(spec)).await {
            Ok(Ok(_instance)) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(InvokeError::InitFailed(format!(
                "the function did not initialize within {:.2} seconds",
                limit.as_secs_f64()
            ))),
        }
    }

    /// Makes `spec` the version that serves its function; the previous version's instances
    /// finish what they are running and are dropped.
    pub fn install(&self, spec: Arc<FunctionSpec>) {
        let name = spec.manifest.name.to_string();
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name, Arc::new(Slot::new(spec)));
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
        Some(FunctionStats {
            state: if slot.instance.initialized() {
                "warm"
            } else {
                "cold"
            },
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
        mut inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let slot = self
            .slot(name)
            .ok_or_else(|| InvokeError::FunctionNotFound(name.to_string()))?;
        slot.invocations.fetch_add(1, Ordering::Relaxed);
        let result = self.run(&slot, &mut inv).await;
        if result.is_err() {
            slot.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn run(
        &self,
        slot: &Slot,
        inv: &mut Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let spec = &slot.spec;
        let mut init_duration = None;
        let instance = match slot.instance.get() {
            Some(i) => i.clone(),
            None => {
                let runtime = self.runtime(spec.manifest.runtime)?;
                let limit = init_timeout(spec);
                let mut started_here = None;
                let instance = slot
                    .instance
                    .get_or_try_init(|| async {
                        let t0 = Instant::now();
                        let inst = tokio::time::timeout(limit, runtime.start(spec.clone()))
                            .await
                            .map_err(|_| {
                                InvokeError::InitFailed(format!(
                                    "the function did not initialize within {:.2} seconds",
                                    limit.as_secs_f64()
                                ))
                            })??;
                        started_here = Some(t0.elapsed());
                        Ok::<_, InvokeError>(inst)
                    })
                    .await?
                    .clone();
                if let Some(d) = started_here {
                    slot.cold_starts.fetch_add(1, Ordering::Relaxed);
                    slot.last_init_us
                        .store(d.as_micros().max(1) as u64, Ordering::Relaxed);
                    tracing::info!(function = %spec.manifest.name, version = spec.version, init_ms = d.as_secs_f64() * 1e3, "cold start");
                }
                init_duration = started_here;
                instance
            }
        };
        let timeout = Duration::from_millis(spec.manifest.timeout_ms);
        let t0 = Instant::now();
        inv.deadline = Some((t0 + timeout).into_std());
        let output = tokio::time::timeout(timeout, instance.invoke(inv.clone()))
            .await
            .map_err(|_| InvokeError::Timeout(timeout))??;
        let report = InvocationReport {
            version: spec.version,
            cold_start: init_duration.is_some(),
            init_duration,
            duration: t0.elapsed(),
        };
        Ok((output, report))
    }
}

fn init_timeout(spec: &FunctionSpec) -> Duration {
    INIT_TIMEOUT.max(Duration::from_millis(spec.manifest.timeout_ms))
}
