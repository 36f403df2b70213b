//! The workers: one dispatcher leases due events (never more than the server's and each
//! function's room allows) and runs each in a task through the scheduler; each ends in an
//! ack with the answer, a retry after a backoff, or a dead letter. The dispatcher also
//! renews this node's leases while they run; a node that dies stops renewing, and its
//! events come due for the other nodes when their leases lapse.

use super::destination::{deliver, Outcome};
use super::{lock, AsyncEvents};
use modelfn_core::{Fault, FunctionRef, Invocation, InvokeError, Origin};
use modelfn_queue::{now_ms, Leased};
use modelfn_scheduler::Scheduler;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the dispatcher looks when nothing woke it (a retry coming due).
const POLL: Duration = Duration::from_millis(250);
/// Answers kept for their callers to read, at most.
const MAX_RESULT: usize = 256 * 1024;
/// Succeeded events are kept this long (their answers), dead ones this long.
const KEEP_SUCCEEDED: Duration = Duration::from_secs(24 * 3600);
const KEEP_DEAD: Duration = Duration::from_secs(14 * 24 * 3600);

/// Starts the dispatcher. Leases a process left behind are given back first: they run
/// again (at least once).
pub fn spawn_workers(
    events: Arc<AsyncEvents>,
    scheduler: Arc<Scheduler>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match events.queue.recover().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                events = n,
                "asynchronous events that were running when the server stopped run again"
            ),
            Err(e) => tracing::error!(error = %e, "could not recover the asynchronous queue"),
        }
        events.count_waiting().await;
        let mut purged = tokio::time::Instant::now();
        let mut renewed = tokio::time::Instant::now();
        loop {
            if events.stopping.load(Ordering::Acquire) {
                return;
            }
            if renewed.elapsed() >= events.settings.lease / 3 {
                renewed = tokio::time::Instant::now();
                if let Err(e) = events.queue.renew(events.settings.lease).await {
                    tracing::warn!(error = %e, "could not renew this node's leases");
                }
            }
            let started = dispatch(&events, &scheduler).await;
            events.looked(started);
            if purged.elapsed() > Duration::from_secs(600) {
                purged = tokio::time::Instant::now();
                let now = now_ms();
                let ms = |d: Duration| d.as_millis() as i64;
                let _ = events
                    .queue
                    .purge(now - ms(KEEP_SUCCEEDED), now - ms(KEEP_DEAD))
                    .await;
            }
            if started == 0 {
                let _ = tokio::time::timeout(POLL, events.wake.notified()).await;
            }
        }
    })
}

/// One look at the queue: leases what there is room for and starts it; answers how many.
async fn dispatch(events: &Arc<AsyncEvents>, scheduler: &Arc<Scheduler>) -> usize {
    let room_total = events
        .settings
        .max_in_flight
        .saturating_sub(events.in_flight());
    if room_total == 0 {
        return 0;
    }
    // A function takes no more events than it may run calls at once, less those running.
    let running: std::collections::HashMap<String, usize> = lock(&events.running).clone();
    let server = events.settings.max_in_flight;
    let sched = scheduler.clone();
    let room = move |f: &str| {
        limit(&sched, f, server).saturating_sub(running.get(f).copied().unwrap_or(0))
    };
    let leased = match events
        .queue
        .lease(room_total, events.settings.lease, &room)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not lease asynchronous events");
            return 0;
        }
    };
    let mut started = 0;
    for l in leased {
        *lock(&events.running).entry(l.function.clone()).or_insert(0) += 1;
        started += 1;
        let (events, scheduler) = (events.clone(), scheduler.clone());
        tokio::spawn(async move {
            let function = l.function.clone();
            run(&events, &scheduler, l).await;
            if let Some(n) = lock(&events.running).get_mut(&function) {
                *n = n.saturating_sub(1);
            }
            events.wake.notify_one();
        });
    }
    started
}

/// A function's events at once at most: what it may run at once (its reserved
/// concurrency, or the default for its kind), within the server's room for events. A
/// function not serving gets one, to be dead-lettered with the reason.
fn limit(scheduler: &Scheduler, function: &str, server: usize) -> usize {
    scheduler
        .concurrency_limit(function)
        .map_or(1, |n| n.clamp(1, server))
}

/// Runs one leased event and settles it: acknowledged with its answer, tried again
/// later, or dead-lettered; then its destination, if the function's `[async]` names one.
async fn run(events: &AsyncEvents, scheduler: &Arc<Scheduler>, l: Leased) {
    let q = &events.queue;
    let settle = |r: Result<(), modelfn_queue::QueueError>| {
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not settle an asynchronous event (it will run again)");
        }
    };
    let config = super::config_of(scheduler, &l.function);
    let bytes = l.payload.len() as i64;
    let (cfg, ev) = (&config, &l);
    // The destination's record is stored before the event is settled: a kill between
    // the two runs the event again and sends the record twice, never none (at least once).
    let dead = |why: String, error: Option<InvokeError>, expired: bool| async move {
        let outcome = Outcome::Failed {
            error: error.as_ref(),
            why: &why,
            expired,
        };
        deliver(events, scheduler, cfg, ev, outcome).await;
        settle(q.dead_letter(&ev.id, &why).await);
        events.waited(&ev.function, -bytes);
    };
    if now_ms() > l.expires_ms {
        dead("the event is older than max_age".into(), None, true).await;
        return;
    }
    let r = FunctionRef::new(l.function.clone(), Some(l.qualifier.as_str()));
    let target = match scheduler.resolve_ref(&r) {
        Ok(t) => t,
        Err(why) => return dead(why.message(&r), None, false).await,
    };
    let mut inv = Invocation::new(l.id.clone(), l.payload.clone(), l.content_type.as_deref())
        .with_trace(l.trace.clone());
    inv.origin = Origin {
        door: "event",
        key_id: l.key_id.clone().map(Arc::from),
        ..Origin::default()
    };
    match scheduler.invoke_resolved(&target, inv).await {
        Ok((out, report)) => {
            let mut body = out.body;
            body.truncate(MAX_RESULT);
            let outcome = Outcome::Succeeded {
                version: report.version,
                answer: &body,
            };
            deliver(events, scheduler, &config, &l, outcome).await;
            settle(q.ack(&l.id, report.version, body).await);
            events.waited(&l.function, -bytes);
        }
        // Not run: waits, and the attempt does not count (as Lambda retries throttles).
        Err(InvokeError::Throttled { retry_after, .. }) => {
            let wait = retry_after.clamp(Duration::from_millis(100), Duration::from_secs(60));
            settle(q.nack(&l.id, "throttled", wait, false).await);
        }
        // The event itself is refused (bad input, no such function): no retry helps.
        Err(e) if e.fault() == Fault::Client => dead(e.to_string(), Some(e), false).await,
        Err(e) if l.attempt >= l.max_attempts => {
            let why = format!("{e} (attempt {} of {})", l.attempt, l.max_attempts);
            dead(why, Some(e), false).await;
        }
        Err(e) => {
            let wait = backoff(events.settings.backoff, l.attempt);
            settle(q.nack(&l.id, &e.to_string(), wait, true).await);
        }
    }
}

/// The wait after attempt `n` failed: `base`, then twice that, and so on (at most an hour).
fn backoff(base: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_wait_longer_each_time() {
        let s = std::time::Duration::from_secs;
        assert_eq!(super::backoff(s(60), 1), s(60));
        assert_eq!(super::backoff(s(60), 2), s(120));
        assert_eq!(super::backoff(s(60), 30), s(3600));
    }
}
