//! What the scheduler tells observers about each invocation: its start, a refusal before
//! it ran, or its end with an [`InvocationReport`]. Lambda's `START`/`END`/`REPORT` lines
//! are one observer (in the telemetry crate); metrics will be another.

use crate::InvokeError;
use std::time::Duration;

/// What one invocation cost, for logs, headers and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationReport {
    pub version: u64,
    pub cold_start: bool,
    /// Set on a cold start: how long the instance took to start.
    pub init_duration: Option<Duration>,
    /// Time spent waiting for admission or an instance.
    pub queue_wait: Duration,
    /// Time in the instance (excluding init).
    pub duration: Duration,
}

/// How a function's instances take calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// One instance serves every call at once (models).
    Shared,
    /// One call per instance at a time (function processes, as on Lambda).
    Exclusive,
}

/// Which invocation an event is about.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub function: &'a str,
    pub version: u64,
    pub request_id: &'a str,
    pub memory_mb: u32,
    pub pool: PoolKind,
}

/// A moment in an invocation's life.
#[derive(Debug, Clone, Copy)]
pub enum Phase<'a> {
    /// Arrived, before admission.
    Start,
    /// Refused or failed before it ran (throttled, or its instance did not start).
    NotRun(&'a InvokeError),
    /// Ran, to an answer, an error or its timeout.
    Ran {
        report: &'a InvocationReport,
        timed_out: Option<Duration>,
        max_memory_used_mb: Option<u64>,
    },
}

/// Receives every invocation's events. Called on the request path: keep it cheap.
pub trait InvocationObserver: Send + Sync + 'static {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>);
}

/// Observes nothing (tests, tools).
pub struct NoObserver;

impl InvocationObserver for NoObserver {
    fn observe(&self, _: &Observed<'_>, _: Phase<'_>) {}
}
