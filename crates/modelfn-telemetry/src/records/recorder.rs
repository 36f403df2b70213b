//! The observer that makes a record of every invocation, and a record as queued: what the
//! request path knows, copied without formatting, then written as one JSON line by the
//! writer thread.

use super::{InvocationRecord, RecordStore, MAX_ERROR};
use crate::text::Text;
use crate::time::now_ms;
use modelfn_core::{InvocationObserver, InvokeError, Observed, Outcome, Phase};
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
    /// written field by field with `itoa` (no formatting machinery, no intermediate
    /// strings; milliseconds to the microsecond). It runs on the writer thread for every
    /// invocation.
    pub(super) fn encode(&self, seq: u64, out: &mut Vec<u8>) {
        let mut line = Line { out };
        line.raw(b"{\"seq\":");
        line.int(seq);
        line.text("request_id", self.request_id.as_str());
        line.text("function", self.function.as_str());
        line.key("version");
        line.int(self.version);
        line.text("door", self.door.as_str());
        if let Some(a) = &self.alias {
            line.text("alias", a);
        }
        if let Some(k) = &self.key_id {
            line.text("key_id", k);
        }
        line.key("start_ms");
        line.int(self.start_ms);
        line.ms("queue_wait_ms", self.queue_wait);
        if let Some(init) = self.init {
            line.ms("init_ms", init);
        }
        line.ms("duration_ms", self.run);
        line.key("billed_ms");
        line.int(self.billed_ms);
        line.key("memory_mb");
        line.int(self.memory_mb);
        if let Some(m) = self.max_memory_used_mb {
            line.key("max_memory_used_mb");
            line.int(m);
        }
        line.key("cold");
        line.raw(if self.cold { b"true" } else { b"false" });
        if let Some(rows) = self.batch_rows {
            line.key("batch_rows");
            line.int(rows);
        }
        line.text("outcome", self.outcome.as_str());
        if let Some(e) = &self.error {
            line.text("error", e);
        }
        line.raw(b"}\n");
    }
}

/// A JSON line being written.
struct Line<'a> {
    out: &'a mut Vec<u8>,
}

impl Line<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    fn key(&mut self, key: &str) {
        self.raw(b",\"");
        self.raw(key.as_bytes());
        self.raw(b"\":");
    }

    fn int(&mut self, n: impl itoa::Integer) {
        self.raw(itoa::Buffer::new().format(n).as_bytes());
    }

    /// `d` in milliseconds with three decimals (microseconds).
    fn ms(&mut self, key: &str, d: Duration) {
        self.key(key);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.int(us / 1000);
        let frac = us % 1000;
        self.raw(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
    }

    /// A string: as it is when it needs no escaping (ids, names), else through serde_json.
    fn text(&mut self, key: &str, s: &str) {
        self.key(key);
        if s.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            self.raw(b"\"");
            self.raw(s.as_bytes());
            self.raw(b"\"");
        } else {
            let _ = serde_json::to_writer(&mut *self.out, s);
        }
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
        if matches!(phase, Phase::Start) {
            return;
        }
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
