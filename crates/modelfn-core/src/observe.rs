//! What the scheduler tells observers about each invocation: its start, a refusal before
//! it ran, or its end with an [`InvocationReport`]. Lambda's `START`/`END`/`REPORT` lines
//! are one observer (in the telemetry crate); metrics and invocation records are others.

use crate::InvokeError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one invocation cost, for logs, headers and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationReport {
    pub version: u64,
    pub cold_start: bool,
    /// Set on a cold start: how long the instance took to start.
    pub init_duration: Option<Duration>,
    /// The cold start restored a snapshot (a snap-start instance): `init_duration` is its
    /// Restore Duration.
    pub restored: bool,
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
    /// Who called, through which door.
    pub origin: &'a Origin,
    /// The caller's trace, in Lambda's form (see [`crate::invocation::trace_header`]).
    pub trace: Option<&'a str>,
}

/// Where an invocation came from: the front door, the alias named, the key that
/// authenticated it, and when the door received and authenticated it (for its trace).
/// Filled by the gateway; the default is an internal call (a test event, a validation).
#[derive(Debug, Clone)]
pub struct Origin {
    /// `native`, `lambda`, `sagemaker`, `oip`, `url`, `api`, `event`, `shadow`, `internal`.
    pub door: &'static str,
    /// The alias the caller named, when it named one.
    pub alias: Option<Arc<str>>,
    /// The access key that authenticated the call (`admin` for the admin token).
    pub key_id: Option<Arc<str>>,
    /// When the door received the request.
    pub received: Option<Instant>,
    /// When authentication began and ended.
    pub auth: Option<(Instant, Instant)>,
}

impl Default for Origin {
    fn default() -> Self {
        Origin {
            door: "internal",
            alias: None,
            key_id: None,
            received: None,
            auth: None,
        }
    }
}

/// The batch a model ran a request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRun {
    /// Rows in the whole batch (this request's and others').
    pub rows: u32,
    /// Requests in the batch.
    pub requests: u32,
    /// When the model began computing it, and for how long.
    pub started: Instant,
    pub took: Duration,
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
        /// When it began to run (after its queue wait and any instance start).
        ran_at: Instant,
        /// The model batch it ran in.
        batch: Option<BatchRun>,
        timed_out: Option<Duration>,
        max_memory_used_mb: Option<u64>,
        /// The error it ended with, if it did not succeed.
        error: Option<&'a InvokeError>,
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

/// How an invocation ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// The function raised, or answered an error.
    FunctionError,
    Timeout,
    /// Refused for concurrency (429).
    Throttled,
    /// The caller's input was refused (400, 415).
    BadInput,
    /// The instance did not start.
    InitError,
    /// The platform could not run it (no instance, shutting down, a bug).
    PlatformError,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::FunctionError,
        Outcome::Timeout,
        Outcome::Throttled,
        Outcome::BadInput,
        Outcome::InitError,
        Outcome::PlatformError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::FunctionError => "function_error",
            Outcome::Timeout => "timeout",
            Outcome::Throttled => "throttled",
            Outcome::BadInput => "bad_input",
            Outcome::InitError => "init_error",
            Outcome::PlatformError => "platform_error",
        }
    }

    /// The outcome of a result.
    pub fn of<T>(result: &Result<T, InvokeError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::of_error(e),
        }
    }

    /// The outcome of an invocation that ended with `e`.
    pub fn of_error(e: &InvokeError) -> Outcome {
        match e {
            InvokeError::Function(_) => Outcome::FunctionError,
            InvokeError::Timeout(_) => Outcome::Timeout,
            InvokeError::Throttled { .. } => Outcome::Throttled,
            InvokeError::InvalidInput(_)
            | InvokeError::UnsupportedMediaType { .. }
            | InvokeError::FunctionNotFound(_) => Outcome::BadInput,
            InvokeError::InitFailed(_) => Outcome::InitError,
            InvokeError::Unavailable(_) | InvokeError::Internal(_) => Outcome::PlatformError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_whose_fault_it_is() {
        let r: Result<(), InvokeError> = Err(InvokeError::Timeout(Duration::from_secs(1)));
        assert_eq!(Outcome::of(&r), Outcome::Timeout);
        let r: Result<(), InvokeError> = Err(InvokeError::InvalidInput("x".into()));
        assert_eq!(Outcome::of(&r), Outcome::BadInput);
        assert_eq!(Outcome::of(&Ok::<(), InvokeError>(())), Outcome::Success);
    }
}
