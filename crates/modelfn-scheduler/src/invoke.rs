//! One invocation from admission to report: the instance's lease (returned or dropped), the
//! timeout, the in-flight count, and the events its observer receives.

use crate::metrics::Outcome;
use crate::pool::{Lease, Slot};
use crate::shadow::Mirror;
use crate::{InvocationReport, Scheduler, INIT_TIMEOUT};
use modelfn_core::{
    Fault, FunctionRef, FunctionSpec, Invocation, InvocationOutput, InvokeError, Observed, Phase,
    PoolKind,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A function's serving version, resolved once. Invoking it runs exactly this version,
/// whatever is deployed meanwhile, so a door that checked a qualifier against
/// [`Resolved::spec`] runs what it checked.
#[derive(Clone)]
pub struct Resolved {
    pub(crate) slot: Arc<Slot>,
    /// The alias's challenger, when this call is mirrored to it.
    pub(crate) shadow: Option<Mirror>,
    /// The alias the caller named (for records and traces).
    pub(crate) alias: Option<Arc<str>>,
}

impl Resolved {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        Resolved {
            slot,
            shadow: None,
            alias: None,
        }
    }

    pub fn spec(&self) -> &Arc<FunctionSpec> {
        &self.slot.spec
    }
}

/// Why a function reference resolves to nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// No function of that name serves.
    NoFunction,
    /// The function serves, but not that version (the one serving is given).
    NoVersion { serving: u64 },
    /// The function has no alias of that name.
    NoAlias,
}

impl Unresolved {
    /// What a door tells the caller, naming the reference.
    pub fn message(&self, r: &FunctionRef) -> String {
        match self {
            Unresolved::NoFunction => format!("function '{}' does not exist", r.name),
            Unresolved::NoVersion { serving } => format!(
                "function '{}' has no version {} serving (the latest is {serving}, also $LATEST)",
                r.name, r.qualifier
            ),
            Unresolved::NoAlias => format!(
                "function '{}' has no alias '{}' (modelfn alias list {} shows them)",
                r.name, r.qualifier, r.name
            ),
        }
    }
}

impl Scheduler {
    /// The version serving `name` now.
    pub fn resolve(&self, name: &str) -> Option<Resolved> {
        self.slot(name).map(Resolved::new)
    }

    /// Runs one invocation of `name` (whichever version serves when it is looked up).
    pub async fn invoke(
        self: &Arc<Self>,
        name: &str,
        inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let target = self
            .resolve(name)
            .ok_or_else(|| InvokeError::FunctionNotFound(name.to_string()))?;
        self.invoke_resolved(&target, inv).await
    }

    /// Runs one invocation of exactly the version `target` resolved to (and, when it was
    /// drawn for shadowing, mirrors it to the alias's challenger once it has answered).
    pub async fn invoke_resolved(
        self: &Arc<Self>,
        target: &Resolved,
        mut inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let slot = &target.slot;
        if target.alias.is_some() {
            inv.origin.alias.clone_from(&target.alias);
        }
        slot.counters.invocations.fetch_add(1, Ordering::Relaxed);
        let mirror = target.shadow.clone().map(|m| (m, inv.clone()));
        // Boxed, so that the futures of the doors above, which hold this one, stay small:
        // each is moved once as it is made, and inline this one doubled each one's size.
        let result = Box::pin(self.run(slot, inv)).await;
        if self.config.metrics {
            slot.metrics.count(Outcome::of(&result));
        }
        if let (Some((m, copy)), Ok((out, _))) = (mirror, &result) {
            self.mirror(m, copy, out.body.clone());
        }
        // Errors are the function's or the platform's; a caller's bad request (a 400) is
        // not the function failing.
        match &result {
            Err(InvokeError::Throttled { .. }) => {
                slot.counters.throttles.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.fault() != Fault::Client => {
                slot.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) | Ok(_) => {}
        }
        result
    }

    pub(crate) async fn run(
        &self,
        slot: &Slot,
        mut inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        let spec = &slot.spec;
        // What observers are told is kept aside: the invocation itself goes to the instance.
        let id = inv.request_id.clone();
        let origin = std::mem::take(&mut inv.origin);
        let trace = inv.trace.clone();
        let who = Observed {
            function: spec.manifest.name.as_str(),
            version: spec.version,
            request_id: &id,
            memory_mb: spec.manifest.memory_mb,
            pool: slot.kind,
            origin: &origin,
            trace: trace.as_deref(),
        };
        let timeout = Duration::from_millis(spec.manifest.timeout_ms);
        let arrived = Instant::now();
        let deadline = arrived + timeout;
        self.observer.observe(&who, Phase::Start);
        let admitted = match self.admit(slot, deadline).await {
            Ok(p) => p,
            Err(e) => {
                self.observer.observe(&who, Phase::NotRun(&e));
                return Err(e);
            }
        };
        let in_flight = InFlight::enter(slot);
        let lease = match self.acquire(slot, deadline).await {
            Ok(l) => l,
            Err(e) => {
                self.observer.observe(&who, Phase::NotRun(&e));
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
        let ends = t0 + timeout;
        inv.deadline = Some(ends.into_std());
        let result = match tokio::time::timeout_at(ends, lease.instance.invoke(inv)).await {
            Ok(r) => r,
            Err(_) => Err(InvokeError::Timeout(timeout)),
        };
        let duration = t0.elapsed();
        slot.record_run(duration);
        if self.config.metrics {
            let m = &slot.metrics;
            m.queue_wait.observe(queue_wait);
            if let Some(init) = lease.init {
                m.init.observe(init);
            }
            m.run.observe(duration);
            // No clock read of its own: from arrival to the run's start, plus the run.
            m.total
                .observe(t0.saturating_duration_since(arrived) + duration);
            if let Some(b) = result.as_ref().ok().and_then(|o| o.batch) {
                m.batch_rows.observe(b.rows);
            }
        }
        let timed_out = matches!(result, Err(InvokeError::Timeout(_)));
        let report = InvocationReport {
            version: spec.version,
            cold_start: lease.init.is_some(),
            init_duration: lease.init,
            restored: lease.init.is_some() && lease.instance.restored(),
            queue_wait,
            duration,
        };
        self.observer.observe(
            &who,
            Phase::Ran {
                report: &report,
                ran_at: t0.into_std(),
                batch: result.as_ref().ok().and_then(|o| o.batch),
                timed_out: timed_out.then_some(timeout),
                max_memory_used_mb: match slot.kind {
                    // Measured for processes only: a model's hot path asks nothing.
                    PoolKind::Exclusive => lease.instance.max_memory_used_mb(),
                    PoolKind::Shared => None,
                },
                error: result.as_ref().err(),
            },
        );
        lease.finish(!timed_out);
        drop(in_flight);
        drop(admitted);
        Ok((result?, report))
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
            let reusable = self.slot.is_shared();
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

pub(crate) fn init_timeout(spec: &FunctionSpec) -> Duration {
    INIT_TIMEOUT.max(Duration::from_millis(spec.manifest.timeout_ms))
}
