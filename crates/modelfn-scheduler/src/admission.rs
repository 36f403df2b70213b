//! Admission: the function and server semaphores, and the bounded, deadline-aware wait for
//! an instance (a warm one, a returned one, or a start within the scale-up rate); refusals
//! are 429 with `Retry-After`.

use crate::pool::{lock, Lease, Slot};
use crate::Scheduler;
use modelfn_core::InvokeError;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// Time a caller must have left for a start the platform failed to be tried again.
const PLATFORM_RETRY_MARGIN: Duration = Duration::from_secs(1);

impl Scheduler {
    /// Admission: the function's limit, then the server's. Waits in a bounded queue, and
    /// refuses at once a call that could not start before its deadline.
    pub(crate) async fn admit(
        &self,
        slot: &Slot,
        deadline: Instant,
    ) -> Result<(Option<OwnedSemaphorePermit>, OwnedSemaphorePermit), InvokeError> {
        let limit = lock(&slot.limit).clone();
        let function = match &limit {
            Some(l) => l.clone().try_acquire_owned().map(Some),
            None => Ok(None),
        };
        if let (Ok(f), Ok(g)) = (function, self.global.clone().try_acquire_owned()) {
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
            let f = match limit {
                Some(l) => l.acquire_owned().await.map(Some),
                None => Ok(None),
            };
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
    pub(crate) async fn acquire(
        &self,
        slot: &Slot,
        deadline: Instant,
    ) -> Result<Lease, InvokeError> {
        if let Some(lease) = slot.take_warm() {
            return Ok(lease);
        }
        // Shared pools start one instance at a time; exclusive pools one per caller.
        let _one_start = if slot.is_shared() {
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
        // A process start waits its turn (a few per core): an instance given back
        // meanwhile serves this caller instead.
        let _turn = if slot.is_shared() {
            None
        } else {
            loop {
                tokio::select! {
                    p = self.process_starts.clone().acquire_owned() => {
                        break Some(p.map_err(|_| InvokeError::Unavailable("the server is shutting down".into()))?);
                    }
                    _ = slot.returned.notified() => {
                        if let Some(lease) = slot.take_warm() {
                            return Ok(lease);
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        return Err(throttled(format!(
                            "function '{}' could not start an instance before the timeout: the server is starting others",
                            slot.spec.manifest.name
                        )));
                    }
                }
            }
        };
        if !slot.is_shared() {
            lock(&slot.pool).starting += 1;
        }
        let t0 = Instant::now();
        let started = match self.start(&slot.spec).await {
            // The platform failed to start it (a sandbox slow to come up on a loaded
            // machine), not the function: once more while the caller's deadline allows.
            Err(InvokeError::Internal(why))
                if Instant::now() + PLATFORM_RETRY_MARGIN < deadline =>
            {
                tracing::warn!(function = %slot.spec.manifest.name, error = %why, "start failed on the platform's side; trying once more");
                self.start(&slot.spec).await
            }
            other => other,
        };
        if !slot.is_shared() {
            lock(&slot.pool).starting -= 1;
        }
        let inst = match started {
            Ok(inst) => inst,
            Err(e) => {
                // Only the function's own failures are answered again without a start.
                if !matches!(e, InvokeError::Internal(_)) {
                    slot.remember_failure(&e);
                }
                return Err(e);
            }
        };
        let took = t0.elapsed();
        slot.forget_failure();
        slot.counters.cold_starts.fetch_add(1, Ordering::Relaxed);
        if inst.restored() {
            slot.counters.restores.fetch_add(1, Ordering::Relaxed);
        }
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
}

fn throttled(message: String) -> InvokeError {
    InvokeError::Throttled {
        message,
        retry_after: Duration::from_secs(1),
    }
}
