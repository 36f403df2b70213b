//! One shard's worker: reads batches (what it was given and never acknowledged first,
//! then new records, gathered for the batching window), spreads them over lanes by
//! partition key when the parallelization factor is above 1, invokes the function with
//! each lane's batches in order, and acknowledges records only after a batch holding
//! them succeeded. A failing batch is split in two and each half tried (bisect-on-error)
//! down to the record that fails; that record is tried `max_retries` more times, then
//! goes to the dead-letter store, and the shard moves on.

use crate::record::{self, Record};
use crate::redis::{Read, ShardStream};
use crate::ShardStats;
use modelfn_core::{FunctionRef, Invocation, InvokeError, Origin, StreamSource};
use modelfn_queue::{InvocationQueue, NewEvent};
use modelfn_scheduler::Scheduler;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A new-record read waits at most this long, so that a stop is seen.
const READ_WAIT: Duration = Duration::from_secs(1);
/// How often the group's lag is read.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// Why a batch stopped being worked on.
enum Halt {
    /// The mapping is stopping: what is not acknowledged is given again next time.
    Stopping,
    /// Redis failed: reconnect; what is not acknowledged is given again.
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for Halt {
    fn from(e: redis::RedisError) -> Self {
        Halt::Redis(e)
    }
}

pub(crate) struct Shard {
    pub function: String,
    pub source: Arc<StreamSource>,
    pub key: String,
    pub scheduler: Arc<Scheduler>,
    pub queue: Arc<dyn InvocationQueue>,
    pub stats: Arc<ShardStats>,
    pub stop: watch::Receiver<bool>,
}

impl Shard {
    /// Works the shard until the mapping stops, reconnecting after a Redis failure.
    pub async fn run(mut self) {
        let mut wait = Duration::from_millis(500);
        loop {
            match self.consume().await {
                Ok(()) | Err(Halt::Stopping) => return,
                Err(Halt::Redis(e)) => {
                    self.stats.failed(&e.to_string());
                    tracing::warn!(function = %self.function, shard = %self.key, error = %e, "stream source: Redis failed; reconnecting");
                }
            }
            if self.pause(wait).await.is_err() {
                return;
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `d`, or answers `Stopping` at once when the mapping stops.
    async fn pause(&mut self, d: Duration) -> Result<(), Halt> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.changed() => Err(Halt::Stopping),
        }
    }

    async fn consume(&mut self) -> Result<(), Halt> {
        let group = format!("modelfn:{}", self.function);
        let mut stream = ShardStream::connect(&self.source.redis, &self.key, &group).await?;
        stream.ensure_group(self.source.starting_position).await?;
        self.stats.connected();
        let want = (self.source.batch_size * self.source.parallelization_factor) as usize;
        let mut unacknowledged = true;
        let mut lag_read = Instant::now() - LAG_EVERY;
        loop {
            if self.stopping() {
                return Ok(());
            }
            if lag_read.elapsed() >= LAG_EVERY {
                lag_read = Instant::now();
                self.stats.lag.store(stream.lag().await?, Ordering::Relaxed);
            }
            let records = if unacknowledged {
                let r = stream.read(Read::Unacknowledged, want).await?;
                unacknowledged = !r.is_empty();
                r
            } else {
                self.gather(&mut stream, want).await?
            };
            let Some(first) = records.first() else {
                self.stats.iterator_age_ms.store(0, Ordering::Relaxed);
                continue;
            };
            let age = first
                .added_ms()
                .map_or(0, |t| (modelfn_queue::now_ms() - t).max(0));
            self.stats
                .iterator_age_ms
                .store(age as u64, Ordering::Relaxed);
            self.process(&stream, records).await?;
        }
    }

    /// Up to `want` new records: waits for the first, then for the batching window.
    async fn gather(&self, stream: &mut ShardStream, want: usize) -> Result<Vec<Record>, Halt> {
        let mut got = stream.read(Read::New(READ_WAIT), want).await?;
        let Some(window) = self.source.batching_window.filter(|_| !got.is_empty()) else {
            return Ok(got);
        };
        let until = Instant::now() + window;
        while got.len() < want && !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let more = stream
                .read(Read::New(left.min(READ_WAIT)), want - got.len())
                .await?;
            got.extend(more);
        }
        Ok(got)
    }

    /// Runs the records: a lane per partition key hash, each lane's batches in order.
    async fn process(&self, stream: &ShardStream, records: Vec<Record>) -> Result<(), Halt> {
        let lanes = self.source.parallelization_factor as usize;
        let mut by_lane: Vec<Vec<Record>> = vec![Vec::new(); lanes];
        for r in records {
            let lane = if lanes == 1 {
                0
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                r.field(&self.source.partition_key).hash(&mut h);
                (h.finish() % lanes as u64) as usize
            };
            by_lane[lane].push(r);
        }
        let runs = by_lane
            .into_iter()
            .filter(|l| !l.is_empty())
            .map(|lane| self.run_lane(stream.clone(), lane));
        for r in futures::future::join_all(runs).await {
            r?;
        }
        Ok(())
    }

    async fn run_lane(&self, mut stream: ShardStream, lane: Vec<Record>) -> Result<(), Halt> {
        for batch in lane.chunks(self.source.batch_size as usize) {
            self.settle(&mut stream, batch).await?;
        }
        Ok(())
    }

    /// Runs one batch to its end: every record acknowledged, having succeeded or gone to
    /// the dead-letter store. Parts of it are kept in order on a stack.
    async fn settle(&self, stream: &mut ShardStream, batch: &[Record]) -> Result<(), Halt> {
        let retries = self.source.max_retries;
        let mut todo = vec![(0..batch.len(), retries)];
        let mut stop = self.stop.clone();
        while let Some((range, left)) = todo.pop() {
            let part = &batch[range.clone()];
            let wait = match self.invoke(part).await {
                Ok(()) => {
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .records
                        .fetch_add(part.len() as u64, Ordering::Relaxed);
                    stream.ack(part.iter().map(|r| r.id.as_str())).await?;
                    continue;
                }
                // Not run (throttled, being replaced, not served yet): again, uncounted.
                Err(e) if !ran(&e) => {
                    todo.push((range, left));
                    Duration::from_millis(200)
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if self.source.bisect_on_error && part.len() > 1 {
                        let mid = range.start + part.len() / 2;
                        todo.push((mid..range.end, retries));
                        todo.push((range.start..mid, retries));
                        continue;
                    }
                    if left == 0 {
                        self.bury(part, retries + 1, &e).await;
                        stream.ack(part.iter().map(|r| r.id.as_str())).await?;
                        continue;
                    }
                    todo.push((range, left - 1));
                    backoff(retries - left)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return Err(Halt::Stopping),
            }
        }
        Ok(())
    }

    async fn invoke(&self, records: &[Record]) -> Result<(), InvokeError> {
        let r = FunctionRef::new(self.function.clone(), self.source.qualifier.as_deref());
        let target = self
            .scheduler
            .resolve_ref(&r)
            .map_err(|why| InvokeError::Unavailable(why.message(&r)))?;
        let body = record::event(&self.source.redis_shown(), &self.key, records);
        let mut inv = Invocation::new(request_id(), body, Some("application/json"));
        inv.origin = Origin {
            door: "stream",
            ..Origin::default()
        };
        self.scheduler.invoke_resolved(&target, inv).await.map(drop)
    }

    /// Puts records that keep failing in the dead-letter store (as the event they made),
    /// to be read with `modelfn dlq show` and re-driven as an asynchronous event.
    async fn bury(&self, records: &[Record], attempts: u32, e: &InvokeError) {
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let why = format!(
            "stream {} record {}: {e} (after {attempts} attempts)",
            self.key,
            ids.join(", ")
        );
        let event = NewEvent {
            id: request_id(),
            function: self.function.clone(),
            qualifier: self
                .source
                .qualifier
                .clone()
                .unwrap_or_else(|| "$LATEST".into()),
            payload: record::event(&self.source.redis_shown(), &self.key, records),
            content_type: Some("application/json".into()),
            trace: None,
            key_id: None,
            max_attempts: 3,
            max_age: Duration::from_secs(6 * 3600),
        };
        self.stats
            .dead
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        if let Err(err) = self.queue.bury(event, attempts, &why).await {
            tracing::error!(function = %self.function, error = %err, record = %why, "stream source: a failed record could not be stored in the dead-letter store");
        }
        tracing::warn!(function = %self.function, "{why}: in the dead-letter store");
    }
}

/// Whether an invocation ran (and failed) rather than never starting.
fn ran(e: &InvokeError) -> bool {
    !matches!(
        e,
        InvokeError::Throttled { .. } | InvokeError::Unavailable(_)
    )
}

/// The wait before retry `n` (from 0): 200 ms, doubling, at most 10 s.
fn backoff(n: u32) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << n.min(6))
        .min(Duration::from_secs(10))
}

fn request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}
