//! The scheduler owns the instances of every deployed function version. The gateway
//! hands it an `Invocation`; it admits it (concurrency limits and a bounded,
//! deadline-aware wait), takes a warm instance or starts one (the cold start, at a
//! bounded scale-up rate), enforces the function's timeout, writes Lambda's
//! `START`/`END`/`REPORT` lines for function processes, and reports what happened.
//!
//! - [`pool`]: a shared pool (one instance serves every call: models) or an exclusive
//!   one (one call per instance: processes, as on Lambda);
//! - [`rate`]: the scale-up rate, a token bucket of starts;
//! - the reaper ([`Scheduler::spawn_reaper`]) stops instances idle past their keep-alive
//!   (scale to zero) and keeps provisioned instances started.
//!
//! A failed start is remembered and answered again, without starting anything, for a
//! backoff that doubles from 1 s to 30 s: an import error is reported on every call until
//! it is fixed, without a crash loop.
//!
//! It talks to execution only through the `Runtime` and `Instance` traits of
//! `modelfn-core`.

pub mod pool;
pub mod rate;

use modelfn_core::{
    FunctionSpec, Invocation, InvocationOutput, InvokeError, LogSink, LogStream, Runtime,
    RuntimeKind, ScalingConfig,
};
use pool::{lock, Lease, Slot};
use rate::{ScaleRate, TokenBucket};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
    /// How often idle instances are looked at.
    pub reap_interval: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_concurrency: 10_000,
            default_process_concurrency: 64,
            queue_depth: 10_000,
            scale_rate: ScaleRate::default(),
            reap_interval: Duration::from_secs(1),
        }
    }
}

/// What one invocation cost, for logs, headers and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationReport {
    pub version: u64,
    pub cold_start: bool,
    /// Set on a cold start: how long the instance took to start.
    pub init_duration: Option<Duration>,
    /// Time spent waiting for admission or an instance.
    pub queue_wait: Duration,
    /// Time in the instance (excluding init).
    pub duration: Duration,
}

/// Counters and settings of one function, as `describe` shows them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FunctionStats {
    pub state: &'static str,
    pub instances: usize,
    pub provisioned_instances: usize,
    pub in_flight: usize,
    pub waiting: usize,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub last_init_duration_ms: Option<f64>,
}

/// Routes invocations to instances. Share it behind an `Arc`.
pub struct Scheduler {
    runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
    functions: RwLock<HashMap<String, Arc<Slot>>>,
    logs: Arc<dyn LogSink>,
    config: SchedulerConfig,
    global: Arc<Semaphore>,
}

fn throttled(message: String) -> InvokeError {
    InvokeError::Throttled {
        message,
        retry_after: Duration::from_secs(1),
    }
}

impl Scheduler {
    pub fn new(runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>, logs: Arc<dyn LogSink>) -> Self {
        Self::with_config(runtimes, logs, SchedulerConfig::default())
    }

    pub fn with_config(
        runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
        logs: Arc<dyn LogSink>,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            runtimes,
            functions: RwLock::new(HashMap::new()),
            logs,
            global: Arc::new(Semaphore::new(config.max_concurrency)),
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

    /// Starts one instance of `spec` and stops it again: proves a version can start before
    /// it replaces anything. Answers how long the start took.
    pub async fn validate(&self, spec: Arc<FunctionSpec>) -> Result<Duration, InvokeError> {
        let t0 = Instant::now();
        self.start(&spec).await.map(|_instance| t0.elapsed())
    }

    fn function_limit(&self, scaling: &ScalingConfig, shared: bool) -> usize {
        let default = if shared {
            self.config.max_concurrency
        } else {
            self.config
                .default_process_concurrency
                .min(self.config.max_concurrency)
        };
        scaling.reserved_concurrency.map_or(default, |r| r as usize)
    }

    /// Makes `spec` the version that serves its function, with these scaling settings; the
    /// previous version's instances finish what they are running and are dropped.
    /// Provisioned instances start at once.
    pub fn install(
        self: &Arc<Self>,
        spec: Arc<FunctionSpec>,
        scaling: ScalingConfig,
    ) -> Result<(), InvokeError> {
        let shared = self.runtime(spec.manifest.runtime)?.shared_instances();
        self.check_provisioned(&scaling, shared)?;
        spec.tuning.set(&scaling);
        let name = spec.manifest.name.to_string();
        let slot = Arc::new(Slot::new(
            spec,
            shared,
            scaling.clone(),
            self.function_limit(&scaling, shared),
            TokenBucket::new(self.config.scale_rate),
        ));
        {
            let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
            map.insert(name, slot.clone());
        }
        self.provision(slot);
        Ok(())
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
        self.check_provisioned(&scaling, slot.shared)?;
        let old = slot.scaling();
        slot.spec.tuning.set(&scaling);
        if old.reserved_concurrency != scaling.reserved_concurrency {
            // Calls holding the old limit's permits finish on it; new calls use the new one.
            *lock(&slot.limit) =
                Arc::new(Semaphore::new(self.function_limit(&scaling, slot.shared)));
        }
        *lock(&slot.scaling) = scaling;
        self.provision(slot);
        Ok(())
    }

    /// Refuses provisioned concurrency over what the function may run at once (its
    /// reserved concurrency, or the process guard for code functions).
    fn check_provisioned(&self, scaling: &ScalingConfig, shared: bool) -> Result<(), InvokeError> {
        let limit = if shared {
            1
        } else {
            self.function_limit(scaling, shared)
        };
        let want = scaling.provisioned();
        if want > limit && !shared {
            return Err(InvokeError::InvalidInput(format!(
                "provisioned_concurrency = {want} is more than this function may run at once ({limit}): raise reserved_concurrency first"
            )));
        }
        Ok(())
    }

    /// Starts the provisioned instances a function is missing, in the background, one
    /// at a time. Each start first checks that it is still wanted, so lowering the
    /// setting, replacing the version or deleting the function stops a ramp.
    fn provision(self: &Arc<Self>, slot: Arc<Slot>) {
        let missing = slot.provisioned_missing();
        if missing == 0 {
            return;
        }
        lock(&slot.pool).starting += missing;
        let me = self.clone();
        tokio::spawn(async move {
            let mut left = missing;
            while left > 0 {
                let current = me
                    .slot(slot.spec.manifest.name.as_str())
                    .is_some_and(|s| Arc::ptr_eq(&s, &slot));
                let wanted = slot.scaling().provisioned() > lock(&slot.pool).provisioned_live;
                if !current || !wanted {
                    break;
                }
                let started = me.start(&slot.spec).await;
                left -= 1;
                lock(&slot.pool).starting -= 1;
                match started {
                    Ok(inst) => {
                        if slot.shared && lock(&slot.pool).shared.is_some() {
                            // An on-demand instance is already there; mark the pool provisioned.
                            let mut pool = lock(&slot.pool);
                            if let Some((_, p)) = pool.shared.as_mut() {
                                if !*p {
                                    *p = true;
                                    pool.provisioned_live += 1;
                                }
                            }
                        } else {
                            slot.add(inst, true, false);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(function = %slot.spec.manifest.name, error = %e, "a provisioned instance did not start");
                        slot.remember_failure(&e);
                        break;
                    }
                }
            }
            lock(&slot.pool).starting -= left;
        });
    }

    /// Stops idle instances past their keep-alive and tops up provisioned ones, every
    /// `reap_interval`, until the scheduler is dropped.
    pub fn spawn_reaper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let every = self.config.reap_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else {
                    return;
                };
                me.reap_once();
            }
        })
    }

    /// One pass of the reaper.
    pub fn reap_once(self: &Arc<Self>) {
        let slots: Vec<Arc<Slot>> = {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        let now = Instant::now();
        for slot in slots {
            let stopped = slot.reap(now);
            if stopped > 0 {
                tracing::info!(function = %slot.spec.manifest.name, stopped, "idle instances stopped (keep-alive)");
            }
            if slot.remembered_failure().is_none() {
                self.provision(slot);
            }
        }
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

    /// The scaling settings in effect for `name`.
    pub fn scaling(&self, name: &str) -> Option<ScalingConfig> {
        self.slot(name).map(|s| s.scaling())
    }

    /// Counters of `name`.
    pub fn stats(&self, name: &str) -> Option<FunctionStats> {
        let slot = self.slot(name)?;
        let c = &slot.counters;
        let init_us = c.last_init_us.load(Ordering::Relaxed);
        let instances = slot.instances();
        let provisioned_instances = lock(&slot.pool).provisioned_live;
        Some(FunctionStats {
            state: if instances > 0 { "warm" } else { "cold" },
            instances,
            provisioned_instances,
            in_flight: c.in_flight.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            invocations: c.invocations.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            throttles: c.throttles.load(Ordering::Relaxed),
            cold_starts: c.cold_starts.load(Ordering::Relaxed),
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
        slot.counters.invocations.fetch_add(1, Ordering::Relaxed);
        let result = self.run(&slot, inv).await;
        match &result {
            Err(InvokeError::Throttled { .. }) => {
                slot.counters.throttles.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                slot.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
        }
        result
    }

    /// Admission: the function's limit, then the server's. Waits in a bounded queue, and
    /// refuses at once a call that could not start before its deadline.
    async fn admit(
        &self,
        slot: &Slot,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), InvokeError> {
        let limit = lock(&slot.limit).clone();
        if let (Ok(f), Ok(g)) = (
            limit.clone().try_acquire_owned(),
            self.global.clone().try_acquire_owned(),
        ) {
            return Ok((f, g));
        }
        let name = slot.spec.manifest.name.as_str();
        if slot.scaling().reserved_concurrency == Some(0) {
            // As on Lambda: reserved concurrency 0 stops a function.
            return Err(throttled(format!(
                "function '{name}' has reserved concurrency 0: every invocation is throttled"
            )));
        }
        let c = &slot.counters;
        let ahead = c.waiting.load(Ordering::Relaxed);
        if ahead >= self.config.queue_depth {
            return Err(throttled(format!(
                "function '{name}' has {ahead} invocations waiting; its queue is full"
            )));
        }
        // Expected wait: the callers ahead, served `in_flight` at a time, each taking the mean run time.
        let mean = Duration::from_micros(c.mean_run_us.load(Ordering::Relaxed));
        let lanes = c.in_flight.load(Ordering::Relaxed).max(1) as u32;
        let expected = mean * (ahead as u32 + 1) / lanes;
        let now = Instant::now();
        if now + expected >= deadline {
            return Err(throttled(format!(
                "function '{name}' is at its concurrency limit and this call could not start before its timeout"
            )));
        }
        c.waiting.fetch_add(1, Ordering::Relaxed);
        let waited = tokio::time::timeout_at(deadline, async {
            let f = limit.acquire_owned().await;
            let g = self.global.clone().acquire_owned().await;
            (f, g)
        })
        .await;
        c.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok((Ok(f), Ok(g))) => Ok((f, g)),
            Ok(_) => Err(InvokeError::Unavailable(
                "the function is shutting down".into(),
            )),
            Err(_) => Err(throttled(format!(
                "function '{name}' is at its concurrency limit; no slot freed up before the timeout"
            ))),
        }
    }

    /// A warm instance, or a new one (the cold start, timed, at the scale-up rate).
    async fn acquire(&self, slot: &Slot, deadline: Instant) -> Result<Lease, InvokeError> {
        if let Some(lease) = slot.take_warm() {
            return Ok(lease);
        }
        // Shared pools start one instance at a time; exclusive pools one per caller.
        let _one_start = if slot.shared {
            Some(slot.start_lock.lock().await)
        } else {
            None
        };
        loop {
            if let Some(lease) = slot.take_warm() {
                return Ok(lease);
            }
            if let Some(e) = slot.remembered_failure() {
                return Err(e);
            }
            match slot.starts.try_take() {
                Ok(()) => break,
                Err(wait) => {
                    // Over the scale-up rate: an instance given back, or the next token.
                    let until = (Instant::now() + wait).min(deadline);
                    tokio::select! {
                        _ = slot.returned.notified() => {}
                        _ = tokio::time::sleep_until(until) => {}
                    }
                    if Instant::now() >= deadline {
                        return Err(throttled(format!(
                            "function '{}' is scaling up at its maximum rate; try again",
                            slot.spec.manifest.name
                        )));
                    }
                }
            }
        }
        if !slot.shared {
            lock(&slot.pool).starting += 1;
        }
        let t0 = Instant::now();
        let started = self.start(&slot.spec).await;
        if !slot.shared {
            lock(&slot.pool).starting -= 1;
        }
        let inst = match started {
            Ok(inst) => inst,
            Err(e) => {
                slot.remember_failure(&e);
                return Err(e);
            }
        };
        let took = t0.elapsed();
        slot.forget_failure();
        slot.counters.cold_starts.fetch_add(1, Ordering::Relaxed);
        slot.counters
            .last_init_us
            .store(took.as_micros().max(1) as u64, Ordering::Relaxed);
        tracing::info!(function = %slot.spec.manifest.name, version = slot.spec.version, init_ms = took.as_secs_f64() * 1e3, "cold start");
        slot.add(inst.clone(), false, true);
        Ok(Lease {
            instance: inst,
            provisioned: false,
            init: Some(took),
        })
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
        let timeout = Duration::from_millis(spec.manifest.timeout_ms);
        let arrived = Instant::now();
        let deadline = arrived + timeout;
        // Lines for function processes only; a model's hot path formats nothing.
        let platform = |text: &dyn Fn() -> String| {
            if log {
                self.logs
                    .line(name, Some(&id), LogStream::Platform, &text());
            }
        };
        platform(&|| format!("START RequestId: {id} Version: {}", spec.version));
        let admitted = match self.admit(slot, deadline).await {
            Ok(p) => p,
            Err(e) => {
                platform(&|| format!("{e}"));
                platform(&|| format!("END RequestId: {id}"));
                return Err(e);
            }
        };
        let in_flight = InFlight::enter(slot);
        let lease = match self.acquire(slot, deadline).await {
            Ok(l) => l,
            Err(e) => {
                platform(&|| format!("{e}"));
                platform(&|| format!("END RequestId: {id}"));
                return Err(e);
            }
        };
        // If the caller goes away mid-run, this future is dropped: the guard gives the
        // instance back (a process in the middle of an event is not reused).
        let lease = LeaseGuard {
            slot,
            lease: Some(lease),
        };
        // The function's timeout counts from when it runs, as on Lambda.
        let t0 = Instant::now();
        let queue_wait = t0
            .saturating_duration_since(arrived)
            .saturating_sub(lease.init.unwrap_or_default());
        inv.deadline = Some((t0 + timeout).into_std());
        let result = match tokio::time::timeout(timeout, lease.instance.invoke(inv)).await {
            Ok(r) => r,
            Err(_) => Err(InvokeError::Timeout(timeout)),
        };
        let duration = t0.elapsed();
        slot.record_run(duration);
        let timed_out = matches!(result, Err(InvokeError::Timeout(_)));
        if timed_out {
            platform(&|| {
                format!(
                    "RequestId: {id} Error: Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                )
            });
        }
        platform(&|| format!("END RequestId: {id}"));
        if log {
            let line = report_line(
                &id,
                duration,
                spec.manifest.memory_mb,
                lease.instance.max_memory_used_mb(),
                lease.init,
            );
            self.logs.line(name, Some(&id), LogStream::Platform, &line);
        }
        let init_duration = lease.init;
        lease.finish(!timed_out);
        drop(in_flight);
        drop(admitted);
        let output = result?;
        Ok((
            output,
            InvocationReport {
                version: spec.version,
                cold_start: init_duration.is_some(),
                init_duration,
                queue_wait,
                duration,
            },
        ))
    }
}

/// An instance lent to a running invocation.
struct LeaseGuard<'a> {
    slot: &'a Slot,
    lease: Option<Lease>,
}

impl LeaseGuard<'_> {
    fn finish(mut self, reusable: bool) {
        if let Some(l) = self.lease.take() {
            self.slot.give_back(l, reusable);
        }
    }
}

impl std::ops::Deref for LeaseGuard<'_> {
    type Target = Lease;
    fn deref(&self) -> &Lease {
        // Always Some until `finish` or drop.
        self.lease
            .as_ref()
            .unwrap_or_else(|| unreachable!("a finished lease is not used"))
    }
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if let Some(l) = self.lease.take() {
            // Cancelled: a shared instance serves on; a process stopped mid-event does not.
            let reusable = self.slot.shared;
            self.slot.give_back(l, reusable);
        }
    }
}

/// Counts an admitted invocation until it is dropped.
struct InFlight<'a>(&'a Slot);

impl<'a> InFlight<'a> {
    fn enter(slot: &'a Slot) -> Self {
        slot.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(slot)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
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
