//! Asynchronous invocations (Lambda's `Event` type, and `invoke-async`), durable: an event
//! is answered 202 once the [`InvocationQueue`] has stored it, and runs at least once,
//! across restarts and `kill -9`. Workers ([`worker`]) lease due events and run them
//! through the scheduler, under the same admission and concurrency limits as synchronous
//! calls, at most [`AsyncSettings::max_in_flight`] at once and, per function, no more
//! than its reserved concurrency: an event waits on disk, not in memory. A failure is
//! tried again after a backoff (doubling) until `max_attempts` or `max_age`, then goes to
//! the dead-letter store, readable and re-drivable (`modelfn dlq`).

mod destination;
pub(crate) mod metrics;
mod worker;

use modelfn_core::{AsyncConfig, Invocation};
use modelfn_queue::{InvocationQueue, NewEvent, QueueError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How asynchronous invocations are kept and tried.
#[derive(Debug, Clone)]
pub struct AsyncSettings {
    /// Largest payload (Lambda's 256 KB by default).
    pub max_payload_bytes: usize,
    /// Attempts at most: the first and the retries (Lambda: 3).
    pub max_attempts: u32,
    /// Past this age no attempt starts (Lambda: 6 hours).
    pub max_age: Duration,
    /// The wait before the first retry; it doubles for each next one (Lambda: about 1
    /// minute, then 2).
    pub backoff: Duration,
    /// Events running at once on this server, over all functions.
    pub max_in_flight: usize,
    /// What a deleted function's waiting events become: dropped (`false`) or dead letters.
    pub dead_letter_on_delete: bool,
    /// How long a lease lasts unless renewed; the node renews its leases every third of
    /// it while it lives, so a dead node's events run again elsewhere within this.
    pub lease: Duration,
}

impl Default for AsyncSettings {
    fn default() -> Self {
        AsyncSettings {
            max_payload_bytes: 256 * 1024,
            max_attempts: 3,
            max_age: Duration::from_secs(6 * 3600),
            backoff: Duration::from_secs(60),
            max_in_flight: 64,
            dead_letter_on_delete: false,
            lease: Duration::from_secs(30),
        }
    }
}

/// Why an event was not accepted.
#[derive(Debug)]
pub enum Refused {
    TooLarge(usize),
    /// The function's events already waiting hold this many bytes, its `max_queued_mb`.
    Full {
        waiting: u64,
        limit_mb: u64,
    },
    Storage(String),
}

/// The queue, its workers' shared state, and the settings.
pub struct AsyncEvents {
    pub queue: Arc<dyn InvocationQueue>,
    pub settings: AsyncSettings,
    /// Rings when an event is queued or finishes, so that a worker looks again at once.
    wake: Notify,
    /// Events running now, per function.
    running: Mutex<HashMap<String, usize>>,
    /// Payload bytes waiting (queued or running), per function: counted from the queue
    /// when the workers start and after a redrive, kept up as events come and go.
    waiting: Mutex<HashMap<String, u64>>,
    stopping: AtomicBool,
    /// Looks the dispatcher took at the queue, and whether the last one started nothing.
    rounds: AtomicU64,
    last_idle: AtomicBool,
    /// Payload kilobytes being stored at once, at most [`STORING_KB`]: large events are
    /// written one after another, not all in memory together.
    storing: tokio::sync::Semaphore,
}

/// Room taken for one event's payload until it is stored.
pub struct Reserved<'a>(#[allow(dead_code)] tokio::sync::SemaphorePermit<'a>);

/// Kilobytes of payloads being read or written to the queue at once, at most.
const STORING_KB: usize = 8 * 1024;

impl AsyncEvents {
    pub fn new(queue: Arc<dyn InvocationQueue>, settings: AsyncSettings) -> Arc<AsyncEvents> {
        Arc::new(AsyncEvents {
            queue,
            settings,
            wake: Notify::new(),
            running: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
            last_idle: AtomicBool::new(false),
            storing: tokio::sync::Semaphore::new(STORING_KB),
        })
    }

    /// Room to hold and store an event of `bytes` (taken before its body is read, when
    /// its length is known): large events wait for each other instead of all being in
    /// memory at once.
    pub async fn reserve(&self, bytes: usize) -> Result<Reserved<'_>, Refused> {
        if bytes > self.settings.max_payload_bytes {
            return Err(Refused::TooLarge(self.settings.max_payload_bytes));
        }
        let kb = (bytes / 1024 + 1).min(STORING_KB);
        self.storing
            .acquire_many(u32::try_from(kb).unwrap_or(u32::MAX))
            .await
            .map(Reserved)
            .map_err(|_| Refused::Storage("the queue is closed".into()))
    }

    /// Stores `inv` for `function` (as the caller qualified it), to be tried as `config`
    /// (the function's `[async]` table) says; once this answers Ok, the event is accepted.
    /// `reserved` is the room taken for it before its body was read, if it was.
    pub async fn submit(
        &self,
        function: &str,
        qualifier: &str,
        inv: Invocation,
        reserved: Option<Reserved<'_>>,
        config: &AsyncConfig,
    ) -> Result<(), Refused> {
        let bytes = inv.body.len() as u64;
        if inv.body.len() > self.settings.max_payload_bytes {
            return Err(Refused::TooLarge(self.settings.max_payload_bytes));
        }
        if let Some(limit_mb) = config.max_queued_mb {
            let waiting = self.waiting_bytes(function);
            if waiting + bytes > limit_mb.saturating_mul(1024 * 1024) {
                return Err(Refused::Full { waiting, limit_mb });
            }
        }
        let _room = match reserved {
            Some(r) => r,
            None => self.reserve(inv.body.len()).await?,
        };
        let event = NewEvent {
            id: inv.request_id.to_string(),
            function: function.to_string(),
            qualifier: qualifier.to_string(),
            payload: inv.body,
            content_type: inv.content_type.map(std::borrow::Cow::into_owned),
            trace: inv.trace,
            key_id: inv.origin.key_id.map(|k| k.to_string()),
            max_attempts: config.max_attempts.unwrap_or(self.settings.max_attempts),
            max_age: config.max_age.unwrap_or(self.settings.max_age),
        };
        match self.queue.enqueue(event).await {
            Ok(()) => {
                self.waited(function, bytes as i64);
                self.wake.notify_one();
                Ok(())
            }
            Err(e @ (QueueError::Duplicate(_) | QueueError::Storage(_))) => {
                tracing::warn!(function, error = %e, "an asynchronous event was not stored");
                Err(Refused::Storage(e.to_string()))
            }
        }
    }

    /// A deleted function's waiting events: dropped, or dead-lettered (by the setting).
    pub async fn drop_function(&self, function: &str) -> u64 {
        let why = self
            .settings
            .dead_letter_on_delete
            .then_some("the function was deleted before the event ran");
        lock(&self.waiting).remove(function);
        match self.queue.drop_function(function, why).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(function, error = %e, "could not drop a deleted function's events");
                0
            }
        }
    }

    /// Makes the workers look at the queue now (after a redrive), with the bytes waiting
    /// counted again.
    pub async fn wake(&self) {
        self.count_waiting().await;
        self.wake.notify_one();
    }

    /// Payload bytes waiting for `function`.
    pub fn waiting_bytes(&self, function: &str) -> u64 {
        lock(&self.waiting).get(function).copied().unwrap_or(0)
    }

    /// `bytes` more (or, negative, fewer) waiting for `function`.
    fn waited(&self, function: &str, bytes: i64) {
        let mut w = lock(&self.waiting);
        let n = w.entry(function.to_string()).or_insert(0);
        *n = n.saturating_add_signed(bytes);
    }

    /// Counts the bytes waiting per function from the queue.
    async fn count_waiting(&self) {
        match self.queue.depths().await {
            Ok(depths) => {
                *lock(&self.waiting) = depths
                    .into_iter()
                    .map(|d| (d.function, d.waiting_bytes))
                    .collect();
            }
            Err(e) => tracing::warn!(error = %e, "could not count the asynchronous queue"),
        }
    }

    /// Events running now.
    pub fn in_flight(&self) -> usize {
        lock(&self.running).values().sum()
    }

    /// At shutdown: events already due (accepted just before) and those running get up
    /// to `within`; then no new event starts. Answers how many were still running (they
    /// run again after the restart, as do events not yet due).
    pub async fn drain(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        let from = self.rounds.load(Ordering::Acquire);
        self.wake.notify_one();
        loop {
            // Done once a look taken after the drain began found nothing due, and nothing runs.
            let looked = self.rounds.load(Ordering::Acquire) > from + 1;
            let idle = self.last_idle.load(Ordering::Acquire);
            if (looked && idle && self.in_flight() == 0) || tokio::time::Instant::now() >= deadline
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_waiters();
        loop {
            let live = self.in_flight();
            if live == 0 || tokio::time::Instant::now() >= deadline {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The dispatcher took a look at the queue and started `n` events.
    fn looked(&self, n: usize) {
        self.last_idle.store(n == 0, Ordering::Release);
        self.rounds.fetch_add(1, Ordering::AcqRel);
    }
}

/// A function's `[async]` table, as its latest version has it (the defaults for a
/// function not served).
pub fn config_of(scheduler: &modelfn_scheduler::Scheduler, function: &str) -> AsyncConfig {
    scheduler
        .spec(function)
        .map(|s| s.manifest.async_config.clone())
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub use worker::spawn_workers;
