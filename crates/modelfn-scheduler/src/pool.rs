//! One function version's instances: a shared pool (one instance serving every call, for
//! models) or an exclusive pool (an instance runs one call at a time, for processes),
//! with idle times for keep-alive and marks for provisioned instances.

use modelfn_core::{FunctionSpec, Instance, InvokeError, PoolKind, ScalingConfig};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::rate::TokenBucket;

/// An instance lent to one invocation.
pub struct Lease {
    pub instance: Arc<dyn Instance>,
    pub provisioned: bool,
    /// Set when this invocation started the instance (a cold start).
    pub init: Option<Duration>,
}

pub struct Idle {
    pub instance: Arc<dyn Instance>,
    pub since: Instant,
    pub provisioned: bool,
}

#[derive(Default)]
pub struct Pool {
    /// The one instance of a shared pool (and whether it is provisioned).
    pub shared: Option<(Arc<dyn Instance>, bool)>,
    /// Idle instances of an exclusive pool, most recently used last.
    pub idle: Vec<Idle>,
    /// Instances of an exclusive pool running an invocation.
    pub busy: usize,
    /// Provisioned instances alive (idle or busy).
    pub provisioned_live: usize,
    /// Instances being started.
    pub starting: usize,
}

pub struct InitFailure {
    pub error: InvokeError,
    pub retry_at: Instant,
    pub backoff: Duration,
}

/// Counters for `describe` and reports.
#[derive(Default)]
pub struct Counters {
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub cold_starts: AtomicU64,
    /// Cold starts that restored an instance (snap start) rather than initializing one.
    pub restores: AtomicU64,
    pub throttles: AtomicU64,
    pub last_init_us: AtomicU64,
    /// Invocations admitted and not finished.
    pub in_flight: AtomicUsize,
    /// Invocations waiting for admission.
    pub waiting: AtomicUsize,
    /// Mean run time, exponentially weighted, in µs (for deadline estimates).
    pub mean_run_us: AtomicU64,
}

pub struct Slot {
    pub spec: Arc<FunctionSpec>,
    pub kind: PoolKind,
    pub scaling: Mutex<ScalingConfig>,
    pub pool: Mutex<Pool>,
    /// The function's concurrency limit (replaced when the limit changes); `None` when it
    /// is the server's.
    pub limit: Mutex<Option<Arc<Semaphore>>>,
    /// Signals an instance given back to an exclusive pool.
    pub returned: Notify,
    pub starts: TokenBucket,
    pub start_lock: tokio::sync::Mutex<()>,
    pub init_failure: Mutex<Option<InitFailure>>,
    pub counters: Counters,
    /// Outcomes and latency histograms, for `/metrics`.
    pub metrics: crate::metrics::SlotMetrics,
    /// Provisioned instances asked for this version beyond the function's own setting
    /// (provisioned concurrency on the version, or its share of an alias's).
    pub extra_provisioned: AtomicUsize,
    /// A floor under the provisioned count while a change warms this version before
    /// traffic moves to it (cleared when the change is recorded or given up).
    pub warm_floor: AtomicUsize,
    /// When a shared instance last took a call, in µs after `born`.
    used_us: AtomicU64,
    born: Instant,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Slot {
    pub fn new(
        spec: Arc<FunctionSpec>,
        kind: PoolKind,
        scaling: ScalingConfig,
        limit: Option<Arc<Semaphore>>,
        starts: TokenBucket,
    ) -> Self {
        Slot {
            spec,
            kind,
            scaling: Mutex::new(scaling),
            pool: Mutex::new(Pool::default()),
            limit: Mutex::new(limit),
            returned: Notify::new(),
            starts,
            start_lock: tokio::sync::Mutex::new(()),
            init_failure: Mutex::new(None),
            counters: Counters::default(),
            metrics: Default::default(),
            extra_provisioned: AtomicUsize::new(0),
            warm_floor: AtomicUsize::new(0),
            used_us: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    pub fn is_shared(&self) -> bool {
        match self.kind {
            PoolKind::Shared => true,
            PoolKind::Exclusive => false,
        }
    }

    fn touch(&self) {
        let us = self.born.elapsed().as_micros() as u64;
        self.used_us.store(us, Ordering::Relaxed);
    }

    /// When the shared instance last took a call.
    fn last_used(&self) -> Option<Instant> {
        Some(self.born + Duration::from_micros(self.used_us.load(Ordering::Relaxed)))
    }

    pub fn scaling(&self) -> ScalingConfig {
        lock(&self.scaling).clone()
    }

    /// How many provisioned instances this version keeps: the function's setting (on its
    /// latest), plus what its qualifiers ask, at least the warm floor; a shared pool's one
    /// instance serves every call, so at most 1 there.
    pub fn provisioned_want(&self) -> usize {
        let want = (self.scaling().provisioned() + self.extra_provisioned.load(Ordering::Relaxed))
            .max(self.warm_floor.load(Ordering::Relaxed));
        if self.is_shared() {
            want.min(1)
        } else {
            want
        }
    }

    /// Provisioned instances alive now.
    pub fn provisioned_live(&self) -> usize {
        lock(&self.pool).provisioned_live
    }

    /// A warm instance, if one is free.
    pub fn take_warm(&self) -> Option<Lease> {
        let mut pool = lock(&self.pool);
        if self.is_shared() {
            let (inst, provisioned) = pool.shared.clone().filter(|(i, _)| i.healthy())?;
            drop(pool);
            self.touch();
            return Some(Lease {
                instance: inst,
                provisioned,
                init: None,
            });
        }
        while let Some(idle) = pool.idle.pop() {
            if idle.instance.healthy() {
                pool.busy += 1;
                return Some(Lease {
                    instance: idle.instance,
                    provisioned: idle.provisioned,
                    init: None,
                });
            }
            if idle.provisioned {
                pool.provisioned_live -= 1;
            }
        }
        None
    }

    /// Adds a started instance: to the shared slot, or as busy (lent) or idle.
    pub fn add(&self, instance: Arc<dyn Instance>, provisioned: bool, lend: bool) {
        let mut pool = lock(&self.pool);
        if provisioned {
            pool.provisioned_live += 1;
        }
        if self.is_shared() {
            pool.shared = Some((instance, provisioned));
            drop(pool);
            self.touch();
        } else if lend {
            pool.busy += 1;
        } else {
            pool.idle.push(Idle {
                instance,
                since: Instant::now(),
                provisioned,
            });
            drop(pool);
            self.returned.notify_one();
        }
    }

    /// Gives an instance back after an invocation; `reusable` is false after a timeout.
    pub fn give_back(&self, lease: Lease, reusable: bool) {
        let keep = reusable && lease.instance.healthy();
        if self.is_shared() && keep {
            return; // the hot path of a model: nothing to do
        }
        let mut pool = lock(&self.pool);
        if self.is_shared() {
            if !keep
                && pool
                    .shared
                    .as_ref()
                    .is_some_and(|(s, _)| Arc::ptr_eq(s, &lease.instance))
            {
                pool.shared = None;
                if lease.provisioned {
                    pool.provisioned_live -= 1;
                }
            }
            return;
        }
        pool.busy = pool.busy.saturating_sub(1);
        if keep {
            pool.idle.push(Idle {
                instance: lease.instance,
                since: Instant::now(),
                provisioned: lease.provisioned,
            });
            drop(pool);
            self.returned.notify_one();
        } else if lease.provisioned {
            pool.provisioned_live -= 1;
        }
    }

    /// Stops instances idle for longer than the keep-alive (never provisioned ones).
    /// Answers how many stopped; they are dropped outside the lock.
    pub fn reap(&self, now: Instant) -> usize {
        let keep_alive = self.scaling().keep_alive();
        let want = self.provisioned_want();
        let mut stopped: Vec<Arc<dyn Instance>> = Vec::new();
        {
            let mut pool = lock(&self.pool);
            // Provisioned concurrency lowered: the extra instances become on-demand ones,
            // stopped after their keep-alive like any other.
            let mut excess = pool.provisioned_live.saturating_sub(want);
            if excess > 0 {
                if let Some((_, p)) = pool.shared.as_mut().filter(|(_, p)| *p) {
                    *p = false;
                    excess -= 1;
                }
                for idle in pool.idle.iter_mut().filter(|i| i.provisioned).take(excess) {
                    idle.provisioned = false;
                    idle.since = now;
                    excess -= 1;
                }
                pool.provisioned_live = want + excess;
            }
            if self.is_shared() {
                let idle_for = self
                    .last_used()
                    .map(|t| now.saturating_duration_since(t))
                    .unwrap_or_default();
                let unprovisioned = pool.shared.as_ref().is_some_and(|(_, p)| !p);
                // Calls still running hold their own reference and finish on it.
                if unprovisioned && idle_for >= keep_alive {
                    if let Some((i, _)) = pool.shared.take() {
                        stopped.push(i);
                    }
                }
            } else {
                let mut kept = Vec::with_capacity(pool.idle.len());
                for idle in pool.idle.drain(..) {
                    if !idle.provisioned && now.saturating_duration_since(idle.since) >= keep_alive
                    {
                        stopped.push(idle.instance);
                    } else {
                        kept.push(idle);
                    }
                }
                pool.idle = kept;
            }
        }
        stopped.len()
    }

    /// How many provisioned instances are missing.
    pub fn provisioned_missing(&self) -> usize {
        let want = self.provisioned_want();
        let pool = lock(&self.pool);
        want.saturating_sub(pool.provisioned_live + pool.starting)
    }

    /// Live instances: the shared one, idle ones, busy ones.
    pub fn instances(&self) -> usize {
        let pool = lock(&self.pool);
        pool.shared.iter().count() + pool.idle.len() + pool.busy
    }

    pub fn remembered_failure(&self) -> Option<InvokeError> {
        let f = lock(&self.init_failure);
        f.as_ref()
            .filter(|f| Instant::now() < f.retry_at)
            .map(|f| f.error.clone())
    }

    pub fn remember_failure(&self, error: &InvokeError) {
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

    pub fn forget_failure(&self) {
        *lock(&self.init_failure) = None;
    }

    /// Folds one run time into the mean (weight 1/8).
    pub fn record_run(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let m = &self.counters.mean_run_us;
        let old = m.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { old - old / 8 + us / 8 };
        m.store(new.max(1), Ordering::Relaxed);
    }
}
