//! Provisioned instances and scale to zero: starting what a function's provisioned
//! concurrency asks for (its own setting on its latest version, and what its versions and
//! aliases ask for; within what it may run, cancellable), warming a version before
//! traffic moves to it, and the reaper that stops idle instances past their keep-alive.

use crate::pool::{lock, Slot};
use crate::Scheduler;
use modelfn_core::{InvokeError, PoolKind, ScalingConfig};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One version's provisioned instances as served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProvisionedState {
    pub version: u64,
    /// Instances it keeps started (at most 1 for a model: one instance serves every call).
    pub wanted: usize,
    /// Of those, how many are up.
    pub live: usize,
    /// Why the last start failed, while that is remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl Scheduler {
    /// Refuses provisioned concurrency over what the function may run at once (its
    /// reserved concurrency, or the process guard for code functions).
    pub(crate) fn check_provisioned(
        &self,
        scaling: &ScalingConfig,
        kind: PoolKind,
    ) -> Result<(), InvokeError> {
        let PoolKind::Exclusive = kind else {
            // A shared pool's one instance serves every call.
            return Ok(());
        };
        let limit = self.function_limit(scaling, kind);
        let want = scaling.provisioned();
        if want > limit {
            return Err(InvokeError::InvalidInput(format!(
                "provisioned_concurrency = {want} is more than this function may run at once ({limit}): raise reserved_concurrency first"
            )));
        }
        Ok(())
    }

    /// Whether `extra` provisioned instances, beyond the function's own setting, fit
    /// what version `version` of `name` may run at once.
    pub fn check_provisioned_extra(
        &self,
        name: &str,
        version: u64,
        extra: usize,
    ) -> Result<(), InvokeError> {
        let slot = self.version_slot(name, version)?;
        let mut scaling = slot.scaling();
        let total = scaling.provisioned() + extra;
        scaling.provisioned_concurrency = Some(u32::try_from(total).unwrap_or(u32::MAX));
        self.check_provisioned(&scaling, slot.kind)
    }

    /// Sets what each installed version of `name` keeps started beyond the function's own
    /// setting (provisioned concurrency on the version, or its share of an alias's);
    /// versions not named keep none. Starts what is missing; extra ones become on-demand
    /// instances, stopped after their keep-alive.
    pub fn set_provisioned(self: &Arc<Self>, name: &str, per_version: &BTreeMap<u64, usize>) {
        for slot in self.version_slots(name) {
            let want = per_version.get(&slot.spec.version).copied().unwrap_or(0);
            slot.extra_provisioned.store(want, Ordering::Relaxed);
            self.provision(slot);
        }
    }

    /// Live instances of one installed version (0 when it is not installed).
    pub fn instances(&self, name: &str, version: u64) -> usize {
        self.version_slot(name, version)
            .map(|s| s.instances())
            .unwrap_or(0)
    }

    /// Every installed version's provisioned instances, ascending.
    pub fn provisioned(&self, name: &str) -> Vec<ProvisionedState> {
        let mut out: Vec<ProvisionedState> = self
            .version_slots(name)
            .iter()
            .map(|s| ProvisionedState {
                version: s.spec.version,
                wanted: s.provisioned_want(),
                live: s.provisioned_live(),
                failed: s.remembered_failure().map(|e| e.to_string()),
            })
            .collect();
        out.sort_by_key(|s| s.version);
        out
    }

    /// Warms version `version` of `name` before traffic moves to it: raises a floor of
    /// its own provisioned instances plus `extra` under it, starts what is missing, and
    /// waits until they are up, one fails to start (its error), or `within` passes.
    /// Answers how many are up. The floor stays until [`Scheduler::release_warm`], so
    /// that a reconcile pass in between does not stop what is warming.
    pub async fn warm(
        self: &Arc<Self>,
        name: &str,
        version: u64,
        extra: usize,
        within: Duration,
    ) -> Result<usize, InvokeError> {
        let slot = self.version_slot(name, version)?;
        let want = slot.scaling().provisioned() + extra;
        slot.warm_floor.fetch_max(want, Ordering::Relaxed);
        let want = slot.provisioned_want().min(want);
        // An explicit warm-up tries again at once, whatever failed before.
        slot.forget_failure();
        self.provision(slot.clone());
        let until = Instant::now() + within;
        loop {
            let live = slot.provisioned_live();
            if live >= want {
                return Ok(live);
            }
            if let Some(e) = slot.remembered_failure() {
                return Err(e);
            }
            if Instant::now() >= until {
                return Ok(live);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drops the warm floor of these versions of `name` (what their settings ask for
    /// stays).
    pub fn release_warm(&self, name: &str, versions: &[u64]) {
        for slot in self.version_slots(name) {
            if versions.contains(&slot.spec.version) {
                slot.warm_floor.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Starts the provisioned instances a function is missing, in the background, one
    /// at a time. Each start first checks that it is still wanted, so lowering the
    /// setting, replacing the version or deleting the function stops a ramp.
    pub(crate) fn provision(self: &Arc<Self>, slot: Arc<Slot>) {
        let missing = slot.provisioned_missing();
        if missing == 0 {
            return;
        }
        lock(&slot.pool).starting += missing;
        let me = self.clone();
        tokio::spawn(async move {
            let mut left = missing;
            while left > 0 {
                let current = me.is_installed(&slot);
                let wanted = slot.provisioned_want() > slot.provisioned_live();
                if !current || !wanted {
                    break;
                }
                let turn = if slot.is_shared() {
                    None
                } else {
                    me.process_starts.clone().acquire_owned().await.ok()
                };
                let started = me.start(&slot.spec).await;
                drop(turn);
                left -= 1;
                lock(&slot.pool).starting -= 1;
                match started {
                    Ok(inst) => {
                        if slot.is_shared() && lock(&slot.pool).shared.is_some() {
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

    /// Idle instances stopped by the reaper so far: when it grows, memory was let go.
    pub fn reaped(&self) -> u64 {
        self.reaped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One pass of the reaper.
    pub fn reap_once(self: &Arc<Self>) {
        let slots = self.all_slots();
        let now = Instant::now();
        for slot in slots {
            let stopped = slot.reap(now);
            if stopped > 0 {
                self.reaped
                    .fetch_add(stopped as u64, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(function = %slot.spec.manifest.name, stopped, "idle instances stopped (keep-alive)");
            }
            if slot.remembered_failure().is_none() {
                self.provision(slot);
            }
        }
    }
}
