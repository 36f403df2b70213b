//! Stream sources: the event-source mappings of functions' `[[streams]]` tables, run on
//! this node. [`StreamSources`] converges the running mappings to what the served
//! functions' latest manifests ask for (checked every second, so a deploy or a delete
//! starts or stops one), runs a worker per shard ([`shard`]), and keeps each shard's
//! counters, lag and iterator age for `/metrics` and `GET /v1/streams`.
//!
//! Why Redis Streams first: it is what teams most often already run beside an HTTP
//! service, its consumer groups keep the checkpoint in the broker (`XACK` after success),
//! and Redis 7 reports each group's lag. NATS JetStream would be the second.

mod record;
mod redis;
mod shard;

pub use record::Record;

use modelfn_core::StreamSource;
use modelfn_queue::InvocationQueue;
use modelfn_scheduler::Scheduler;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the mappings are converged to the served manifests.
const CONVERGE_EVERY: Duration = Duration::from_secs(1);

/// One shard's counters, written by its worker.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Records processed (in batches that succeeded).
    pub records: AtomicU64,
    /// Batches that succeeded.
    pub batches: AtomicU64,
    /// Invocations that failed (before a retry, a split or the dead-letter store).
    pub errors: AtomicU64,
    /// Records put in the dead-letter store.
    pub dead: AtomicU64,
    /// Records not yet processed (never given, or given and not acknowledged).
    pub lag: AtomicU64,
    /// How old the first record of the last batch read was when it was read (0 when
    /// the shard is caught up).
    pub iterator_age_ms: AtomicU64,
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl ShardStats {
    fn connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
        *lock(&self.last_error) = None;
    }

    fn failed(&self, why: &str) {
        self.connected.store(false, Ordering::Relaxed);
        *lock(&self.last_error) = Some(why.to_string());
    }
}

/// One shard as `GET /v1/streams` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardStatus {
    pub function: String,
    /// The Redis server (without a password).
    pub redis: String,
    pub stream: String,
    /// The shard's stream key.
    pub shard: String,
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub records: u64,
    pub batches: u64,
    pub errors: u64,
    pub dead: u64,
    pub lag: u64,
    pub iterator_age_ms: u64,
}

/// A running mapping: its shards' workers and counters.
struct Mapping {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shards: Vec<(String, Arc<ShardStats>)>,
}

/// Every mapping this node runs.
pub struct StreamSources {
    scheduler: Arc<Scheduler>,
    queue: Arc<dyn InvocationQueue>,
    running: Mutex<HashMap<(String, StreamSource), Mapping>>,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StreamSources {
    /// Mappings invoke through `scheduler`; records that keep failing go to `queue`'s
    /// dead-letter store.
    pub fn new(scheduler: Arc<Scheduler>, queue: Arc<dyn InvocationQueue>) -> Arc<Self> {
        Arc::new(StreamSources {
            scheduler,
            queue,
            running: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        })
    }

    /// Converges the mappings every second until [`stop`](Self::stop).
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while !me.stopping.load(Ordering::Acquire) {
                me.converge();
                tokio::time::sleep(CONVERGE_EVERY).await;
            }
        })
    }

    /// Starts the mappings the served functions' latest manifests name and stops those
    /// they no longer do (a changed table is a new mapping).
    pub fn converge(&self) {
        let mut wanted = Vec::new();
        for name in self.scheduler.names() {
            if let Some(spec) = self.scheduler.spec(&name) {
                for s in &spec.manifest.streams {
                    wanted.push((name.clone(), s.clone()));
                }
            }
        }
        let mut running = lock(&self.running);
        running.retain(|key, m| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(function = %key.0, stream = %key.1.stream, "stream source stopped");
                let _ = m.stop.send(true);
            }
            keep
        });
        for key in wanted {
            if running.contains_key(&key) || self.stopping.load(Ordering::Acquire) {
                continue;
            }
            tracing::info!(function = %key.0, stream = %key.1.stream, shards = key.1.shards, "stream source started");
            let m = self.start(&key.0, &key.1);
            running.insert(key, m);
        }
    }

    fn start(&self, function: &str, source: &StreamSource) -> Mapping {
        let (stop, rx) = watch::channel(false);
        let source = Arc::new(source.clone());
        let mut tasks = Vec::new();
        let mut shards = Vec::new();
        for key in source.shard_keys() {
            let stats = Arc::new(ShardStats::default());
            let worker = shard::Shard {
                function: function.to_string(),
                source: source.clone(),
                key: key.clone(),
                scheduler: self.scheduler.clone(),
                queue: self.queue.clone(),
                stats: stats.clone(),
                stop: rx.clone(),
            };
            tasks.push(tokio::spawn(worker.run()));
            shards.push((key, stats));
        }
        Mapping {
            stop,
            tasks,
            shards,
        }
    }

    /// Every shard of every running mapping.
    pub fn status(&self) -> Vec<ShardStatus> {
        let running = lock(&self.running);
        let mut out: Vec<ShardStatus> = running
            .iter()
            .flat_map(|((function, source), m)| {
                m.shards.iter().map(move |(shard, s)| ShardStatus {
                    function: function.clone(),
                    redis: source.redis_shown(),
                    stream: source.stream.clone(),
                    shard: shard.clone(),
                    connected: s.connected.load(Ordering::Relaxed),
                    last_error: lock(&s.last_error).clone(),
                    records: s.records.load(Ordering::Relaxed),
                    batches: s.batches.load(Ordering::Relaxed),
                    errors: s.errors.load(Ordering::Relaxed),
                    dead: s.dead.load(Ordering::Relaxed),
                    lag: s.lag.load(Ordering::Relaxed),
                    iterator_age_ms: s.iterator_age_ms.load(Ordering::Relaxed),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.function, &a.shard).cmp(&(&b.function, &b.shard)));
        out
    }

    /// Stops every mapping: a batch running finishes (or, past `deadline`, is left
    /// unacknowledged, to be given again after a restart).
    pub async fn stop(&self, deadline: Duration) {
        self.stopping.store(true, Ordering::Release);
        let tasks: Vec<JoinHandle<()>> = {
            let mut running = lock(&self.running);
            running
                .drain()
                .flat_map(|(_, m)| {
                    let _ = m.stop.send(true);
                    m.tasks
                })
                .collect()
        };
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(deadline, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}
