//! Stream sources: the event-source mappings of functions' `[[streams]]` tables, run on
//! this node. [`StreamSources`] converges the running mappings to what the served
//! functions' latest manifests ask for (checked every second, so a deploy or a delete
//! starts or stops one), runs a worker per shard ([`shard`]), and keeps each shard's
//! counters, lag and iterator age for `/metrics` and `GET /v1/streams`.
//!
//! A mapping runs on one node at a time: the node holds its lease ([`Leases`], in the
//! cluster's PostgreSQL; on SQLite the node is alone), renewed at every pass. Other nodes
//! stand by; when the holder stops or dies, its lease lapses within [`LEASE_FOR`], and the
//! next node to take it reads the records the group gave and never saw acknowledged first.
//!
//! Why Redis Streams first: it is what teams most often already run beside an HTTP
//! service, its consumer groups keep the checkpoint in the broker (`XACK` after success),
//! and Redis 7 reports each group's lag. NATS JetStream would be the second.

mod record;
mod redis;
mod shard;

pub use record::Record;

use modelfn_core::StreamSource;
use modelfn_queue::{InvocationQueue, Leases};
use modelfn_scheduler::Scheduler;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the mappings are converged to the served manifests (and their leases
/// renewed).
const CONVERGE_EVERY: Duration = Duration::from_secs(1);
/// How long a mapping's lease lasts unrenewed: a dead node's mappings move within this.
pub const LEASE_FOR: Duration = Duration::from_secs(5);

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
    leases: Arc<dyn Leases>,
    running: Mutex<HashMap<(String, StreamSource), Mapping>>,
    stopping: AtomicBool,
}

/// The lease of a mapping: its function, stream and Redis server (without a password).
fn lease_name(function: &str, source: &StreamSource) -> String {
    format!(
        "stream:{function}:{}:{}",
        source.redis_shown(),
        source.stream
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StreamSources {
    /// Mappings invoke through `scheduler`; records that keep failing go to `queue`'s
    /// dead-letter store; a mapping runs while this node holds its lease in `leases`.
    pub fn new(
        scheduler: Arc<Scheduler>,
        queue: Arc<dyn InvocationQueue>,
        leases: Arc<dyn Leases>,
    ) -> Arc<Self> {
        Arc::new(StreamSources {
            scheduler,
            queue,
            leases,
            running: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        })
    }

    /// Converges the mappings every second until [`stop`](Self::stop).
    pub fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while !me.stopping.load(Ordering::Acquire) {
                me.converge().await;
                tokio::time::sleep(CONVERGE_EVERY).await;
            }
        })
    }

    /// Starts the mappings the served functions' latest manifests name and this node
    /// holds the lease of, and stops those they no longer name or whose lease another
    /// node has (a changed table is a new mapping).
    pub async fn converge(&self) {
        let mut named = Vec::new();
        for name in self.scheduler.names() {
            if let Some(spec) = self.scheduler.spec(&name) {
                for s in &spec.manifest.streams {
                    named.push((name.clone(), s.clone()));
                }
            }
        }
        let mut wanted = Vec::new();
        for key in named {
            match self
                .leases
                .hold(&lease_name(&key.0, &key.1), LEASE_FOR)
                .await
            {
                Ok(true) => wanted.push(key),
                Ok(false) => {}
                // The store is unreachable: keep what runs (its lease may still be ours),
                // start nothing new.
                Err(e) => {
                    tracing::warn!(function = %key.0, error = %e, "could not renew a stream mapping's lease");
                    if lock(&self.running).contains_key(&key) {
                        wanted.push(key);
                    }
                }
            }
        }
        let mut gone = Vec::new();
        {
            let mut running = lock(&self.running);
            running.retain(|key, m| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(function = %key.0, stream = %key.1.stream, "stream source stopped on this node");
                let _ = m.stop.send(true);
                gone.push(lease_name(&key.0, &key.1));
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
        for name in gone {
            let _ = self.leases.release(&name).await;
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
        // Another node takes the mappings over at once, not when the leases lapse.
        let names: Vec<String> = self
            .scheduler
            .names()
            .into_iter()
            .filter_map(|n| self.scheduler.spec(&n).map(|s| (n, s)))
            .flat_map(|(n, s)| {
                s.manifest
                    .streams
                    .iter()
                    .map(|src| lease_name(&n, src))
                    .collect::<Vec<_>>()
            })
            .collect();
        for name in names {
            let _ = self.leases.release(&name).await;
        }
    }
}
