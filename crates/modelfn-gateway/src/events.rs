//! `Event` invocations (Lambda's asynchronous type), bounded until the durable queue
//! exists: each payload at most [`MAX_EVENT_BYTES`] (Lambda's 256 KB), all queued
//! payloads together at most [`QUEUED_BYTES`] (past it, 429 with `Retry-After`), and a
//! deleted function's queued events are dropped with it. At shutdown they get the
//! shutdown deadline to finish. They are held in memory: a restart loses what is left,
//! and a failure is not retried (see the README).

use modelfn_core::Invocation;
use modelfn_scheduler::{Resolved, Scheduler};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// Largest `Event` payload, as Lambda's default.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// Payload bytes queued at once, over all functions.
pub const QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// Why an event was not queued.
#[derive(Debug, PartialEq)]
pub enum Refused {
    TooLarge,
    Full,
}

#[derive(Default)]
pub struct EventQueue {
    bytes: Arc<AtomicUsize>,
    tasks: Mutex<HashMap<String, Vec<AbortHandle>>>,
}

/// Gives an event's bytes back to the budget when its task ends or is aborted.
struct Held {
    bytes: Arc<AtomicUsize>,
    n: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.bytes.fetch_sub(self.n, Ordering::AcqRel);
    }
}

impl EventQueue {
    /// Runs `inv` on `function` in the background, within the budget.
    pub fn submit(
        &self,
        scheduler: Arc<Scheduler>,
        target: Resolved,
        mut inv: Invocation,
    ) -> Result<(), Refused> {
        let n = inv.body.len();
        // Queued: its trace starts when it runs, but it keeps who sent it.
        inv.origin = modelfn_core::Origin {
            door: "event",
            key_id: crate::request::origin().key_id,
            ..Default::default()
        };
        let name = target.spec().manifest.name.to_string();
        let key = name.clone();
        self.spawn(&key, n, async move {
            // The version the caller's qualifier resolved to, not whatever is latest later.
            if let Err(e) = scheduler.invoke_resolved(&target, inv).await {
                tracing::warn!(function = %name, error = %e, "an Event invocation failed (no retries yet)");
            }
        })
    }

    /// Runs `work` (an event of `n` payload bytes) in the background, within the budget.
    fn spawn(
        &self,
        function: &str,
        n: usize,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Refused> {
        if n > MAX_EVENT_BYTES {
            return Err(Refused::TooLarge);
        }
        let before = self.bytes.fetch_add(n, Ordering::AcqRel);
        let held = Held {
            bytes: self.bytes.clone(),
            n,
        };
        if before + n > QUEUED_BYTES {
            return Err(Refused::Full);
        }
        let task = tokio::spawn(async move {
            let _held = held;
            work.await;
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let list = tasks.entry(function.to_string()).or_default();
        list.retain(|t| !t.is_finished());
        list.push(task.abort_handle());
        Ok(())
    }

    /// Drops a deleted function's queued events.
    pub fn drop_function(&self, function: &str) -> usize {
        let list = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(function)
            .unwrap_or_default();
        let live = list.iter().filter(|t| !t.is_finished()).count();
        for t in list {
            t.abort();
        }
        live
    }

    /// At shutdown: waits up to `within` for the queued events to finish, then drops the
    /// rest. Answers how many were dropped.
    pub async fn drain(&self, within: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let live: usize = {
                let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
                tasks
                    .values()
                    .map(|l| l.iter().filter(|t| !t.is_finished()).count())
                    .sum()
            };
            if live == 0 {
                return 0;
            }
            if tokio::time::Instant::now() >= deadline {
                let tasks =
                    std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
                for t in tasks.values().flatten() {
                    t.abort();
                }
                return live;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Payload bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budgets_and_drops_with_the_function() {
        let q = EventQueue::default();
        assert_eq!(
            q.spawn("f", MAX_EVENT_BYTES + 1, async {}),
            Err(Refused::TooLarge)
        );
        // Events that never finish, until the budget is spent.
        let mut queued = 0;
        while q
            .spawn("f", MAX_EVENT_BYTES, std::future::pending())
            .is_ok()
        {
            queued += 1;
        }
        assert_eq!(queued, QUEUED_BYTES / MAX_EVENT_BYTES);
        assert_eq!(q.spawn("g", 1, async {}), Err(Refused::Full));
        assert_eq!(q.drop_function("f"), queued);
        for _ in 0..100 {
            if q.queued_bytes() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(q.queued_bytes(), 0, "a deleted function's bytes come back");
        assert!(q.spawn("g", 1, async {}).is_ok());
        // At shutdown: finished work drains at once; stuck work is dropped at the deadline.
        assert!(q
            .spawn(
                "h",
                1,
                tokio::time::sleep(std::time::Duration::from_millis(50))
            )
            .is_ok());
        assert_eq!(q.drain(std::time::Duration::from_secs(5)).await, 0);
        assert!(q.spawn("h", 1, std::future::pending()).is_ok());
        assert_eq!(q.drain(std::time::Duration::from_millis(100)).await, 1);
    }
}
