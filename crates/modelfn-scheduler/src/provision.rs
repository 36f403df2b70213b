//! Provisioned instances and scale to zero: starting what a function's provisioned
//! concurrency asks for (within what it may run, cancellable), and the reaper that stops
//! idle instances past their keep-alive.

use crate::pool::{lock, Slot};
use crate::Scheduler;
use modelfn_core::{InvokeError, PoolKind, ScalingConfig};
use std::sync::Arc;
use tokio::time::Instant;

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
                let wanted = slot.scaling().provisioned() > lock(&slot.pool).provisioned_live;
                if !current || !wanted {
                    break;
                }
                let started = me.start(&slot.spec).await;
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

    /// One pass of the reaper.
    pub fn reap_once(self: &Arc<Self>) {
        let slots = self.all_slots();
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
}
