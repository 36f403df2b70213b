//! The durable queue of asynchronous invocations (Lambda's `Event` type). An event is
//! accepted once [`InvocationQueue::enqueue`] has stored it; workers then
//! [`lease`](InvocationQueue::lease) ready events, run them, and
//! [`ack`](InvocationQueue::ack) (with the result), [`nack`](InvocationQueue::nack) (to
//! try again later) or [`dead_letter`](InvocationQueue::dead_letter) them. A lease that is
//! never settled (the process died) runs again: delivery is at least once.
//!
//! [`sql::SqlQueue`] implements it on SQLite (embedded, one node) and on PostgreSQL (one
//! queue for a cluster's nodes, leased with `FOR UPDATE SKIP LOCKED`).

pub mod leases;
pub mod sql;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use leases::Leases;
pub use sql::SqlQueue;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("an event with id {0} is already queued")]
    Duplicate(String),
    #[error("the queue's storage failed: {0}")]
    Storage(String),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Storage(e.to_string())
    }
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The request id: the event's id, as its caller was told.
    pub id: String,
    pub function: String,
    /// `$LATEST`, a version or an alias: resolved when the event runs.
    pub qualifier: String,
    pub payload: Bytes,
    pub content_type: Option<String>,
    pub trace: Option<String>,
    pub key_id: Option<String>,
    /// Runs at most (the first and the retries).
    pub max_attempts: u32,
    /// Past this age no attempt starts.
    pub max_age: Duration,
}

/// An event leased to a worker.
#[derive(Debug, Clone)]
pub struct Leased {
    pub id: String,
    pub function: String,
    pub qualifier: String,
    pub payload: Bytes,
    pub content_type: Option<String>,
    pub trace: Option<String>,
    pub key_id: Option<String>,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    pub enqueued_ms: i64,
    pub expires_ms: i64,
}

/// Where an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// Waiting for its (next) attempt.
    Queued,
    /// Running.
    Leased,
    Succeeded,
    /// Out of attempts or of age, or refused: in the dead-letter store.
    Dead,
}

impl EventState {
    fn as_str(self) -> &'static str {
        match self {
            EventState::Queued => "queued",
            EventState::Leased => "leased",
            EventState::Succeeded => "succeeded",
            EventState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<EventState> {
        [
            EventState::Queued,
            EventState::Leased,
            EventState::Succeeded,
            EventState::Dead,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// What is known of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventStatus {
    pub id: String,
    pub function: String,
    pub qualifier: String,
    pub state: EventState,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_attempts: u32,
    pub enqueued_ms: i64,
    /// When the next attempt may start (queued events).
    pub not_before_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The version that last ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub payload_bytes: u64,
    /// The function's answer (succeeded events), as it answered.
    #[serde(skip)]
    pub result: Option<Bytes>,
    /// The event itself (dead events, for `dlq show`).
    #[serde(skip)]
    pub payload: Option<Bytes>,
}

/// One function's queue, counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub function: String,
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    /// Succeeded events that ran more than once (a retry, or a restart mid-run).
    pub reran: u64,
    pub dead: u64,
    /// Payload bytes waiting (queued and running).
    pub waiting_bytes: u64,
    /// When the oldest waiting event was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_ms: Option<i64>,
}

/// Which dead events to take.
#[derive(Debug, Clone, Default)]
pub struct DeadQuery {
    pub function: Option<String>,
    pub id: Option<String>,
    pub limit: Option<usize>,
}

/// Where asynchronous invocations wait.
#[async_trait]
pub trait InvocationQueue: Send + Sync + 'static {
    /// Stores an event; once this answers, the event is accepted.
    async fn enqueue(&self, event: NewEvent) -> Result<(), QueueError>;

    /// Stores an event that already failed `attempts` times elsewhere (a stream's poison
    /// record) straight in the dead-letter store, with why: listed and re-driven as any.
    async fn bury(&self, event: NewEvent, attempts: u32, error: &str) -> Result<(), QueueError>;

    /// Leases up to `n` events that are due, oldest first, for `lease_for` (past it, the
    /// event may be leased again), and at most `room(function)` of each function: the
    /// payloads of events a function has no room for are not read.
    async fn lease(
        &self,
        n: usize,
        lease_for: Duration,
        room: &(dyn for<'a> Fn(&'a str) -> usize + Send + Sync),
    ) -> Result<Vec<Leased>, QueueError>;

    /// The event ran to `result` on `version`.
    async fn ack(&self, id: &str, version: u64, result: Bytes) -> Result<(), QueueError>;

    /// The event goes back to wait `retry_in`; with `count_attempt` false, the attempt
    /// it had is given back (it was throttled, it did not run).
    async fn nack(
        &self,
        id: &str,
        error: &str,
        retry_in: Duration,
        count_attempt: bool,
    ) -> Result<(), QueueError>;

    /// The event goes to the dead-letter store, with why.
    async fn dead_letter(&self, id: &str, error: &str) -> Result<(), QueueError>;

    async fn status(&self, id: &str) -> Result<Option<EventStatus>, QueueError>;

    /// Dead events, newest first (with their payloads).
    async fn dead(&self, q: &DeadQuery) -> Result<Vec<EventStatus>, QueueError>;

    /// Dead events back to the queue with fresh attempts and age; answers how many.
    async fn redrive(&self, q: &DeadQuery, max_age: Duration) -> Result<u64, QueueError>;

    /// A deleted function's waiting events: removed, or dead-lettered with `why`.
    async fn drop_function(
        &self,
        function: &str,
        dead_letter: Option<&str>,
    ) -> Result<u64, QueueError>;

    /// Extends every lease this node holds to `lease_for` from now; answers how many.
    async fn renew(&self, lease_for: Duration) -> Result<u64, QueueError>;

    /// At start: this node's leases from before its restart are given back (their attempt
    /// counts). Other nodes' leases are left to expire: those nodes may be running them.
    async fn recover(&self) -> Result<u64, QueueError>;

    /// Every function's queue.
    async fn depths(&self) -> Result<Vec<QueueDepth>, QueueError>;

    /// Removes succeeded events finished before `before_ms`, and dead ones enqueued before
    /// `dead_before_ms`; answers how many.
    async fn purge(&self, before_ms: i64, dead_before_ms: i64) -> Result<u64, QueueError>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
