//! Traces of invocations, made from what the scheduler observes: nothing on the request
//! path builds a span. When an invocation ends, the [`Tracer`] decides whether to keep it;
//! a kept one is copied as a [`Timeline`] (its instants, names and outcome) into a ring of
//! the last N for the dashboard and the admin API, and queued for OTLP export when that is
//! configured. Its spans (authenticate, route, queue, instance start, model load, run,
//! batch) are built from the timeline when it is read or exported ([`spans`]).
//!
//! Which invocations are kept, decided once each has ended (so a cold start is never
//! missed):
//! - when the caller sent a trace with a sampled flag, that flag (parent-based);
//! - every cold start;
//! - the first [`TraceConfig::per_second`] each second on each thread (errors have an
//!   allowance of their own), then [`TraceConfig::ratio`] of the rest, by the random low
//!   56 bits of the trace id (as W3C Trace Context Level 2 and OpenTelemetry's newer
//!   samplers read them).

mod otlp;
mod spans;

pub use spans::{SpanView, TraceView};

use crate::records::recorder::error_text;
use crate::text::Text;
use modelfn_core::trace::TraceIds;
use modelfn_core::{BatchRun, InvocationObserver, Observed, Outcome, Phase, PoolKind};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// What to keep and where to send it.
#[derive(Debug, Clone)]
pub struct TraceConfig {
    /// Traces kept in memory (the newest).
    pub keep: usize,
    /// Invocations kept each second on each thread before the ratio applies.
    pub per_second: u32,
    /// The share of the rest kept, 0 to 1.
    pub ratio: f64,
    /// Export over OTLP/HTTP (protobuf) when set.
    pub otlp: Option<OtlpConfig>,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            keep: 1000,
            per_second: 5,
            ratio: 0.01,
            otlp: None,
        }
    }
}

/// Where spans go.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The collector's traces URL (`http://host:4318/v1/traces`); `None`: from
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
}

/// The tracer's own health, for `/metrics`.
#[derive(Debug, Default)]
pub struct TraceCounters {
    pub kept: AtomicU64,
    pub spans_exported: AtomicU64,
    /// Traces the export queue had no room for.
    pub export_dropped: AtomicU64,
    /// Export requests the collector refused or did not answer.
    pub export_failed: AtomicU64,
}

/// One kept invocation, as observed.
pub struct Timeline {
    pub(crate) ids: TraceIds,
    pub(crate) request_id: Text,
    pub(crate) function: Text,
    pub(crate) version: u64,
    pub(crate) pool: PoolKind,
    pub(crate) door: &'static str,
    pub(crate) alias: Option<Arc<str>>,
    pub(crate) key_id: Option<Arc<str>>,
    /// A moment on both clocks, from which every instant is placed on the wall clock.
    pub(crate) anchor: Instant,
    pub(crate) anchor_wall: SystemTime,
    pub(crate) end: Instant,
    pub(crate) received: Instant,
    pub(crate) auth: Option<(Instant, Instant)>,
    /// When the scheduler took it.
    pub(crate) arrived: Instant,
    pub(crate) ran: Option<Ran>,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
}

/// The part of a timeline that ran.
pub(crate) struct Ran {
    pub(crate) at: Instant,
    pub(crate) init: Option<Duration>,
    pub(crate) duration: Duration,
    pub(crate) batch: Option<BatchRun>,
}

impl Timeline {
    /// `t` on the wall clock.
    pub(crate) fn wall(&self, t: Instant) -> SystemTime {
        match self.anchor.checked_duration_since(t) {
            Some(before) => self.anchor_wall - before,
            None => self.anchor_wall + t.duration_since(self.anchor),
        }
    }

    pub(crate) fn cold(&self) -> bool {
        self.ran.as_ref().is_some_and(|r| r.init.is_some())
    }
}

/// Keeps, serves and exports traces.
pub struct Tracer {
    ring: Mutex<VecDeque<Arc<Timeline>>>,
    keep: usize,
    per_second: u32,
    /// Trace ids whose sample key is below this are kept.
    threshold: u64,
    export: Option<SyncSender<Arc<Timeline>>>,
    exporter: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub counters: Arc<TraceCounters>,
}

impl Drop for Tracer {
    /// Sends what is queued before returning (at shutdown).
    fn drop(&mut self) {
        self.export = None;
        let exporter = self
            .exporter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(e) = exporter {
            let _ = e.join();
        }
    }
}

thread_local! {
    /// This thread's allowance this second: (second, kept, errors kept).
    static ALLOWANCE: Cell<(u64, u32, u32)> = const { Cell::new((0, 0, 0)) };
}

fn second_of(t: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    t.saturating_duration_since(*EPOCH.get_or_init(Instant::now))
        .as_secs()
        + 1
}

impl Tracer {
    /// A tracer; with OTLP configured, its export thread is started.
    pub fn new(config: &TraceConfig) -> std::io::Result<Arc<Tracer>> {
        let counters = Arc::new(TraceCounters::default());
        let (export, exporter) = match &config.otlp {
            Some(o) => {
                let (tx, handle) = otlp::start(o.clone(), counters.clone())?;
                (Some(tx), Some(handle))
            }
            None => (None, None),
        };
        Ok(Arc::new(Tracer {
            ring: Mutex::new(VecDeque::with_capacity(config.keep.min(100_000))),
            keep: config.keep.max(1),
            per_second: config.per_second,
            threshold: TraceIds::sample_threshold(config.ratio),
            export,
            exporter: Mutex::new(exporter),
            counters,
        }))
    }

    /// Whether to keep an invocation that ended at `t`; its trace ids when it is kept.
    /// Most calls are not kept, and cost a thread-local counter and 14 hex digits read.
    fn keeps(&self, who: &Observed<'_>, cold: bool, failed: bool, t: Instant) -> Option<TraceIds> {
        let ids = || TraceIds::of(who.trace, who.request_id);
        if who.trace.is_some() {
            let ids = ids();
            if let Some(sampled) = ids.caller_sampled {
                return sampled.then_some(ids);
            }
        }
        if cold || self.allowed(failed, t) {
            return Some(ids());
        }
        let key = match who.trace {
            Some(_) => ids().sample_key(),
            None => TraceIds::sample_key_of_request(who.request_id),
        };
        (key < self.threshold).then(ids)
    }

    /// Whether this thread's allowance this second has room (errors have their own).
    fn allowed(&self, failed: bool, t: Instant) -> bool {
        let second = second_of(t);
        ALLOWANCE.with(|a| {
            let (s, mut kept, mut errors) = a.get();
            if s != second {
                (kept, errors) = (0, 0);
            }
            let take = if failed {
                errors < self.per_second
            } else {
                kept < self.per_second
            };
            if take {
                if failed {
                    errors += 1;
                } else {
                    kept += 1;
                }
            }
            a.set((second, kept, errors));
            take
        })
    }

    fn keep(&self, t: Timeline) {
        let t = Arc::new(t);
        self.counters.kept.fetch_add(1, Ordering::Relaxed);
        if let Some(q) = &self.export {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                q.try_send(t.clone())
            {
                self.counters.export_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let gone = {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            let gone = (ring.len() >= self.keep).then(|| ring.pop_front());
            ring.push_back(t);
            gone
        };
        // Freed outside the lock.
        drop(gone);
    }

    /// The newest kept traces (of `function`, or all), newest first.
    pub fn recent(&self, function: Option<&str>, limit: usize) -> Vec<TraceView> {
        let picked: Vec<Arc<Timeline>> = {
            let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            ring.iter()
                .rev()
                .filter(|t| function.is_none_or(|f| t.function.as_str() == f))
                .take(limit)
                .cloned()
                .collect()
        };
        picked.iter().map(|t| spans::view(t)).collect()
    }

    /// The kept trace of a request, if it was kept and is still in memory.
    pub fn find(&self, request_id: &str) -> Option<TraceView> {
        let found = {
            let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            ring.iter()
                .rev()
                .find(|t| t.request_id.as_str() == request_id)
                .cloned()
        };
        found.map(|t| spans::view(&t))
    }
}

impl InvocationObserver for Tracer {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        let (ran, end, failed, error) = match phase {
            Phase::Start => return,
            Phase::NotRun(e) => (None, Instant::now(), true, Some(e)),
            Phase::Ran {
                report,
                ran_at,
                batch,
                error,
                ..
            } => (
                Some(Ran {
                    at: ran_at,
                    init: report.init_duration,
                    duration: report.duration,
                    batch,
                }),
                ran_at + report.duration,
                error.is_some(),
                error,
            ),
        };
        let cold = ran.as_ref().is_some_and(|r| r.init.is_some());
        let Some(ids) = self.keeps(who, cold, failed, end) else {
            return;
        };
        let arrived = match (&ran, phase) {
            (Some(r), Phase::Ran { report, .. }) => {
                r.at.checked_sub(r.init.unwrap_or_default() + report.queue_wait)
                    .unwrap_or(r.at)
            }
            _ => end,
        };
        let o = who.origin;
        self.keep(Timeline {
            ids,
            request_id: Text::new(who.request_id),
            function: Text::new(who.function),
            version: who.version,
            pool: who.pool,
            door: o.door,
            alias: o.alias.clone(),
            key_id: o.key_id.clone(),
            anchor: Instant::now(),
            anchor_wall: SystemTime::now(),
            end,
            received: o.received.unwrap_or(arrived).min(arrived),
            auth: o.auth,
            arrived,
            ran,
            outcome: error.map_or(Outcome::Success, Outcome::of_error),
            error: error.map(error_text),
        });
    }
}

#[cfg(test)]
mod tests;
