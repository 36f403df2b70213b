//! The observer that makes a record of every invocation, and a record as queued: what the
//! request path knows, copied without formatting, then written as one JSON line by the
//! writer thread.

use super::{InvocationRecord, RecordStore, MAX_ERROR};
use crate::text::Text;
use crate::time::now_ms;
use modelfn_core::{InvocationObserver, InvokeError, Observed, Outcome, Phase};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// The observer that makes a record of every invocation.
pub struct Recorder {
    store: Arc<RecordStore>,
}

impl Recorder {
    pub fn new(store: Arc<RecordStore>) -> Self {
        Recorder { store }
    }
}

pub(crate) fn error_text(e: &InvokeError) -> String {
    let mut s = e.to_string();
    if s.len() > MAX_ERROR {
        let cut = (0..=MAX_ERROR)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s.truncate(cut);
    }
    s
}

/// A record as queued: what the request path knows, unformatted.
pub(super) struct Pending {
    request_id: Text,
    function: Text,
    version: u64,
    door: Text,
    alias: Option<Arc<str>>,
    key_id: Option<Arc<str>>,
    start_ms: i64,
    queue_wait: Duration,
    init: Option<Duration>,
    run: Duration,
    billed_ms: u64,
    memory_mb: u32,
    max_memory_used_mb: Option<u64>,
    cold: bool,
    batch_rows: Option<u32>,
    outcome: Outcome,
    error: Option<String>,
}

impl Pending {
    /// The record as one JSON line, numbered `seq`: what [`InvocationRecord`] reads,
    /// written field by field (no intermediate strings; milliseconds to the microsecond).
    pub(super) fn encode(&self, seq: u64, out: &mut Vec<u8>) {
        let ms = |out: &mut Vec<u8>, d: Duration| {
            let us = d.as_micros();
            let _ = write!(out, "{}.{:03}", us / 1000, us % 1000);
        };
        let text = |out: &mut Vec<u8>, key: &str, s: &str| {
            let _ = write!(out, ",\"{key}\":");
            let _ = serde_json::to_writer(&mut *out, s);
        };
        let _ = write!(out, "{{\"seq\":{seq}");
        text(out, "request_id", self.request_id.as_str());
        text(out, "function", self.function.as_str());
        let _ = write!(out, ",\"version\":{}", self.version);
        text(out, "door", self.door.as_str());
        if let Some(a) = &self.alias {
            text(out, "alias", a);
        }
        if let Some(k) = &self.key_id {
            text(out, "key_id", k);
        }
        let _ = write!(out, ",\"start_ms\":{},\"queue_wait_ms\":", self.start_ms);
        ms(out, self.queue_wait);
        if let Some(init) = self.init {
            out.extend_from_slice(b",\"init_ms\":");
            ms(out, init);
        }
        out.extend_from_slice(b",\"duration_ms\":");
        ms(out, self.run);
        let _ = write!(
            out,
            ",\"billed_ms\":{},\"memory_mb\":{}",
            self.billed_ms, self.memory_mb
        );
        if let Some(m) = self.max_memory_used_mb {
            let _ = write!(out, ",\"max_memory_used_mb\":{m}");
        }
        let _ = write!(out, ",\"cold\":{}", self.cold);
        if let Some(rows) = self.batch_rows {
            let _ = write!(out, ",\"batch_rows\":{rows}");
        }
        let _ = write!(out, ",\"outcome\":\"{}\"", self.outcome.as_str());
        if let Some(e) = &self.error {
            text(out, "error", e);
        }
        out.extend_from_slice(b"}\n");
    }
}

impl From<InvocationRecord> for Pending {
    fn from(r: InvocationRecord) -> Pending {
        let d = |ms: f64| Duration::from_secs_f64(ms.max(0.0) / 1e3);
        Pending {
            request_id: Text::new(&r.request_id),
            function: Text::new(&r.function),
            version: r.version,
            door: Text::new(&r.door),
            alias: r.alias.map(Arc::from),
            key_id: r.key_id.map(Arc::from),
            start_ms: r.start_ms,
            queue_wait: d(r.queue_wait_ms),
            init: r.init_ms.map(d),
            run: d(r.duration_ms),
            billed_ms: r.billed_ms,
            memory_mb: r.memory_mb,
            max_memory_used_mb: r.max_memory_used_mb,
            cold: r.cold,
            batch_rows: r.batch_rows,
            outcome: r.outcome,
            error: r.error,
        }
    }
}

impl InvocationObserver for Recorder {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        let now = now_ms();
        let mut pending = Pending {
            request_id: Text::new(who.request_id),
            function: Text::new(who.function),
            version: who.version,
            door: Text::new(who.origin.door),
            alias: who.origin.alias.clone(),
            key_id: who.origin.key_id.clone(),
            start_ms: now,
            queue_wait: Duration::ZERO,
            init: None,
            run: Duration::ZERO,
            billed_ms: 0,
            memory_mb: who.memory_mb,
            max_memory_used_mb: None,
            cold: false,
            batch_rows: None,
            outcome: Outcome::Success,
            error: None,
        };
        match phase {
            Phase::Start => return,
            Phase::NotRun(e) => {
                pending.outcome = Outcome::of_error(e);
                pending.error = Some(error_text(e));
            }
            Phase::Ran {
                report,
                max_memory_used_mb,
                error,
                batch,
                ..
            } => {
                let took =
                    report.queue_wait + report.init_duration.unwrap_or_default() + report.duration;
                pending.start_ms = now - took.as_millis() as i64;
                pending.queue_wait = report.queue_wait;
                pending.init = report.init_duration;
                pending.run = report.duration;
                // As Lambda bills: rounded up to the millisecond.
                pending.billed_ms = report.duration.as_micros().div_ceil(1000).max(1) as u64;
                pending.max_memory_used_mb = max_memory_used_mb;
                pending.cold = report.cold_start;
                pending.batch_rows = batch.map(|b| b.rows);
                pending.outcome = error.map_or(Outcome::Success, Outcome::of_error);
                pending.error = error.map(error_text);
            }
        }
        self.store.queue_pending(pending);
    }
}
