//! The scheduler owns the instances of every deployed function version. The gateway
//! hands it an `Invocation`; it admits it (concurrency limits and a bounded,
//! deadline-aware wait), takes a warm instance or starts one (the cold start, at a
//! bounded scale-up rate), enforces the function's timeout, and reports what happened
//! to its `InvocationObserver` (Lambda's `START`/`END`/`REPORT` lines are one, in
//! `modelfn-telemetry`).
//!
//! - `pool`: a shared pool (one instance serves every call: models) or an exclusive
//!   one (one call per instance: processes, as on Lambda);
//! - [`rate`]: the scale-up rate, a token bucket of starts;
//! - [`metrics`]: per-version outcome counters and latency histograms, read at scrape
//!   time;
//! - [`shadow`]: mirrors a share of an alias's calls to a challenger and compares;
//! - the reaper ([`Scheduler::spawn_reaper`]) stops instances idle past their keep-alive
//!   (scale to zero) and keeps provisioned instances started.
//!
//! A failed start is remembered and answered again, without starting anything, for a
//! backoff that doubles from 1 s to 30 s: an import error is reported on every call until
//! it is fixed, without a crash loop.
//!
//! It talks to execution only through the `Runtime` and `Instance` traits of
//! `modelfn-core`.

mod admission;
mod invoke;
pub mod metrics;
pub use invoke::{Resolved, Unresolved};
mod pool;
mod provision;
pub use provision::ProvisionedState;
pub mod rate;
mod shadow;
pub use shadow::{ShadowReport, ShadowRoute, MAX_SHADOW_CALLS};
mod versions;
pub use versions::{AliasRoute, Sticky};

use invoke::init_timeout;
use modelfn_core::{
    FunctionSpec, Invocation, InvocationObserver, InvokeError, PoolKind, Runtime, RuntimeKind,
    ScalingConfig,
};
use pool::{lock, Slot};
use rate::{ScaleRate, TokenBucket};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// How long an instance may take to initialize, as Lambda's init phase (10 s), unless the
/// function's own timeout is longer.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Server-wide settings.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Invocations running at once on this server, all functions together.
    pub max_concurrency: usize,
    /// Processes of one code function at once when it sets no reserved concurrency (a
    /// guard for small machines; a model's one instance is not limited by it).
    pub default_process_concurrency: usize,
    /// Invocations waiting for admission per function; more are refused with 429.
    pub queue_depth: usize,
    /// Instance starts per function.
    pub scale_rate: ScaleRate,
    /// Process instances starting at once on this server, per core (2): a burst's other
    /// cold starts wait for them (or for an instance given back) instead of thrashing.
    pub starts_per_core: usize,
    /// How often idle instances are looked at.
    pub reap_interval: Duration,
    /// Whether invocations are counted for `/metrics` (off only to measure what that
    /// costs).
    pub metrics: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_concurrency: 10_000,
            default_process_concurrency: 64,
            queue_depth: 10_000,
            scale_rate: ScaleRate::default(),
            starts_per_core: 2,
            reap_interval: Duration::from_secs(1),
            metrics: true,
        }
    }
}

pub use modelfn_core::InvocationReport;

/// Whether a function has instances running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmth {
    /// No instance: the next call is a cold start.
    #[default]
    Cold,
    Warm,
}

impl PartialEq<&str> for Warmth {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Warmth {
    pub fn as_str(self) -> &'static str {
        match self {
            Warmth::Cold => "cold",
            Warmth::Warm => "warm",
        }
    }
}

/// Counters and settings of one function, as `describe` shows them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FunctionStats {
    pub state: Warmth,
    pub instances: usize,
    pub provisioned_instances: usize,
    pub in_flight: usize,
    pub waiting: usize,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    /// Of the cold starts, those restored from a snap-start template.
    #[serde(default)]
    pub restores: u64,
    pub last_init_duration_ms: Option<f64>,
}

/// Routes invocations to instances. Share it behind an `Arc`.
pub struct Scheduler {
    runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
    functions: RwLock<HashMap<String, versions::Served>>,
    observer: Arc<dyn InvocationObserver>,
    config: SchedulerConfig,
    global: Arc<Semaphore>,
    /// Mirrored (shadow) calls running, bounded by [`MAX_SHADOW_CALLS`].
    shadow_calls: Arc<Semaphore>,
    /// Idle instances the reaper has stopped, in all (scale to zero).
    reaped: std::sync::atomic::AtomicU64,
    /// Process starts under way, at most `starts_per_core` × cores.
    process_starts: Arc<Semaphore>,
}

impl Scheduler {
    /// A scheduler whose invocations are reported to `observer` (Lambda's
    /// START/END/REPORT lines come from `modelfn_telemetry::LambdaLines`).
    pub fn new(
        runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
        observer: Arc<dyn InvocationObserver>,
    ) -> Self {
        Self::with_config(runtimes, observer, SchedulerConfig::default())
    }

    pub fn with_config(
        runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
        observer: Arc<dyn InvocationObserver>,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            runtimes,
            functions: RwLock::new(HashMap::new()),
            observer,
            global: Arc::new(Semaphore::new(config.max_concurrency)),
            shadow_calls: Arc::new(Semaphore::new(MAX_SHADOW_CALLS)),
            reaped: std::sync::atomic::AtomicU64::new(0),
            process_starts: Arc::new(Semaphore::new(
                config.starts_per_core.max(1)
                    * std::thread::available_parallelism().map_or(1, usize::from),
            )),
            config,
        }
    }

    fn runtime(&self, kind: RuntimeKind) -> Result<&Arc<dyn Runtime>, InvokeError> {
        self.runtimes.get(&kind).ok_or_else(|| {
            InvokeError::Internal(format!("no runtime for '{}' in this server", kind.as_str()))
        })
    }

    async fn start(
        &self,
        spec: &Arc<FunctionSpec>,
    ) -> Result<Arc<dyn modelfn_core::Instance>, InvokeError> {
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

    /// Starts one instance of `spec`, sends it `event` when given (it must answer without
    /// an error), and stops it again: proves a version, or a version with a new model, works
    /// before it replaces anything. Answers how long the start took.
    pub async fn validate(
        &self,
        spec: Arc<FunctionSpec>,
        event: Option<Invocation>,
    ) -> Result<Duration, InvokeError> {
        let t0 = Instant::now();
        let instance = self.start(&spec).await?;
        let took = t0.elapsed();
        if let Some(mut inv) = event {
            let timeout = Duration::from_millis(spec.manifest.timeout_ms);
            inv.deadline = Some((Instant::now() + timeout).into_std());
            match tokio::time::timeout(timeout, instance.invoke(inv)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(InvokeError::init(format!(
                        "the test event did not succeed: {e}"
                    )))
                }
                Err(_) => {
                    return Err(InvokeError::init(format!(
                        "the test event got no answer within {} ms",
                        spec.manifest.timeout_ms
                    )))
                }
            }
        }
        Ok(took)
    }

    /// How many calls of a function may run at once.
    pub(crate) fn function_limit(&self, scaling: &ScalingConfig, kind: PoolKind) -> usize {
        let default = match kind {
            PoolKind::Shared => self.config.max_concurrency,
            PoolKind::Exclusive => self
                .config
                .default_process_concurrency
                .min(self.config.max_concurrency),
        };
        scaling.reserved_concurrency.map_or(default, |r| r as usize)
    }

    /// The function's own semaphore, or `None` when its limit is the server's (a model
    /// without reserved concurrency): the server's permit is then the only one taken.
    fn function_semaphore(
        &self,
        scaling: &ScalingConfig,
        kind: PoolKind,
    ) -> Option<Arc<Semaphore>> {
        let limit = self.function_limit(scaling, kind);
        (limit < self.config.max_concurrency).then(|| Arc::new(Semaphore::new(limit)))
    }

    /// Makes `spec` the latest version of its function (what a call with no qualifier
    /// runs), with these scaling settings. The version it replaces stays installed until
    /// [`Scheduler::retain_versions`] drops it; calls running on it finish there.
    /// Provisioned instances start at once.
    pub fn install(
        self: &Arc<Self>,
        spec: Arc<FunctionSpec>,
        scaling: ScalingConfig,
    ) -> Result<(), InvokeError> {
        let slot = self.install_slot(spec, scaling, true)?;
        self.provision(slot);
        Ok(())
    }

    /// Installs an older version of a function beside its latest (for qualifiers and
    /// aliases), without provisioned instances.
    pub fn install_version(
        self: &Arc<Self>,
        spec: Arc<FunctionSpec>,
        mut scaling: ScalingConfig,
    ) -> Result<(), InvokeError> {
        scaling.provisioned_concurrency = None;
        self.install_slot(spec, scaling, false).map(|_| ())
    }

    fn install_slot(
        self: &Arc<Self>,
        spec: Arc<FunctionSpec>,
        scaling: ScalingConfig,
        latest: bool,
    ) -> Result<Arc<Slot>, InvokeError> {
        let kind = self.runtime(spec.manifest.runtime)?.pool_kind();
        self.check_provisioned(&scaling, kind)?;
        let name = spec.manifest.name.to_string();
        let version = spec.version;
        let existing = {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            map.get(&name)
                .and_then(|s| s.versions.get(&version))
                .filter(|s| {
                    s.spec.code_sha256 == spec.code_sha256
                        && s.spec.model_sha256() == spec.model_sha256()
                })
                .cloned()
        };
        // A version already installed keeps its warm instances; only its settings change.
        // With another model-store revision it is a new slot: new calls start instances
        // of the new model, calls running on the old one finish there.
        let slot = match existing {
            Some(slot) => {
                self.apply_scaling(&slot, scaling);
                slot
            }
            None => {
                spec.tuning.set(&scaling);
                Arc::new(Slot::new(
                    spec,
                    kind,
                    scaling.clone(),
                    self.function_semaphore(&scaling, kind),
                    TokenBucket::new(self.config.scale_rate),
                ))
            }
        };
        let replaced = {
            let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
            let served = map.entry(name).or_default();
            served.versions.insert(version, slot.clone());
            if latest {
                served.latest.replace(slot.clone())
            } else {
                None
            }
        };
        // The function's own provisioned concurrency follows its latest version: the one
        // replaced keeps only what its qualifiers ask for.
        if let Some(old) = replaced.filter(|old| !Arc::ptr_eq(old, &slot)) {
            let mut s = old.scaling();
            if s.provisioned_concurrency.take().is_some() {
                self.apply_scaling(&old, s);
            }
        }
        Ok(slot)
    }

    fn apply_scaling(&self, slot: &Arc<Slot>, scaling: ScalingConfig) {
        let old = slot.scaling();
        slot.spec.tuning.set(&scaling);
        if old.reserved_concurrency != scaling.reserved_concurrency {
            // Calls holding the old limit's permits finish on it; new calls use the new one.
            *lock(&slot.limit) = self.function_semaphore(&scaling, slot.kind);
        }
        *lock(&slot.scaling) = scaling;
    }

    /// Changes a function's scaling settings without restarting anything.
    pub fn configure(
        self: &Arc<Self>,
        name: &str,
        scaling: ScalingConfig,
    ) -> Result<(), InvokeError> {
        let slot = self
            .slot(name)
            .ok_or_else(|| InvokeError::FunctionNotFound(name.to_string()))?;
        self.check_provisioned(&scaling, slot.kind)?;
        // Older versions take the same settings, without provisioned instances.
        let others: Vec<Arc<Slot>> = {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            map.get(name)
                .map(|s| {
                    s.versions
                        .values()
                        .filter(|v| !Arc::ptr_eq(v, &slot))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        for other in others {
            let mut s = scaling.clone();
            s.provisioned_concurrency = None;
            self.apply_scaling(&other, s);
        }
        self.apply_scaling(&slot, scaling);
        self.provision(slot);
        Ok(())
    }

    /// Stops serving a function; answers whether it was served.
    pub fn remove(&self, name: &str) -> bool {
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name).is_some()
    }

    /// The names of the functions served.
    pub fn names(&self) -> Vec<String> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.keys().cloned().collect()
    }

    /// The latest version's slot.
    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).and_then(|s| s.latest.clone())
    }

    /// Every installed slot of every function.
    pub(crate) fn all_slots(&self) -> Vec<Arc<Slot>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            .flat_map(|s| s.versions.values().cloned())
            .collect()
    }

    /// The version serving `name`, if any.
    pub fn spec(&self, name: &str) -> Option<Arc<FunctionSpec>> {
        self.slot(name).map(|s| s.spec.clone())
    }

    /// The scaling settings in effect for `name`.
    pub fn scaling(&self, name: &str) -> Option<ScalingConfig> {
        self.slot(name).map(|s| s.scaling())
    }

    /// How many calls of `name` (its latest) may run at once, as settings are now.
    pub fn concurrency_limit(&self, name: &str) -> Option<usize> {
        self.slot(name)
            .map(|s| self.function_limit(&s.scaling(), s.kind))
    }

    /// Counters of `name`.
    pub fn stats(&self, name: &str) -> Option<FunctionStats> {
        let slot = self.slot(name)?;
        let c = &slot.counters;
        let init_us = c.last_init_us.load(Ordering::Relaxed);
        let instances = slot.instances();
        let provisioned_instances = lock(&slot.pool).provisioned_live;
        Some(FunctionStats {
            state: if instances > 0 {
                Warmth::Warm
            } else {
                Warmth::Cold
            },
            instances,
            provisioned_instances,
            in_flight: c.in_flight.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            invocations: c.invocations.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            throttles: c.throttles.load(Ordering::Relaxed),
            cold_starts: c.cold_starts.load(Ordering::Relaxed),
            restores: c.restores.load(Ordering::Relaxed),
            last_init_duration_ms: (init_us > 0).then(|| init_us as f64 / 1000.0),
        })
    }
}
