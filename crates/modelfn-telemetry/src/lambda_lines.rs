//! Lambda's `START`, `END` and `REPORT` lines, written to the log store for function
//! processes (a model's calls format nothing on the request path: its lines are made from
//! its invocation records when they are read, [`record_lines`]).

use modelfn_core::{InvocationObserver, LogSink, LogStream, Observed, Phase, PoolKind};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// The observer that writes Lambda's platform lines.
pub struct LambdaLines {
    logs: Arc<dyn LogSink>,
}

impl LambdaLines {
    pub fn new(logs: Arc<dyn LogSink>) -> Self {
        LambdaLines { logs }
    }

    fn line(&self, who: &Observed<'_>, text: &str) {
        self.logs.line(
            who.function,
            Some(who.request_id),
            LogStream::Platform,
            text,
        );
    }
}

impl InvocationObserver for LambdaLines {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        if who.pool != PoolKind::Exclusive {
            return;
        }
        let id = who.request_id;
        match phase {
            Phase::Start => self.line(
                who,
                &format!("START RequestId: {id} Version: {}", who.version),
            ),
            Phase::NotRun(e) => {
                self.line(who, &e.to_string());
                self.line(who, &format!("END RequestId: {id}"));
            }
            Phase::Ran {
                report,
                timed_out,
                max_memory_used_mb,
                ..
            } => {
                if let Some(after) = timed_out {
                    self.line(
                        who,
                        &format!(
                            "RequestId: {id} Error: Task timed out after {:.2} seconds",
                            after.as_secs_f64()
                        ),
                    );
                }
                self.line(who, &format!("END RequestId: {id}"));
                self.line(
                    who,
                    &report_line(
                        id,
                        report.duration,
                        who.memory_mb,
                        max_memory_used_mb,
                        report.init_duration,
                        report.restored,
                    ),
                );
            }
        }
    }
}

/// Lambda's `REPORT` line: a cold start's `Init Duration`, or `Restore Duration` when
/// the instance was restored from a snapshot (snap start).
pub fn report_line(
    id: &str,
    duration: Duration,
    memory_mb: u32,
    max_used_mb: Option<u64>,
    init: Option<Duration>,
    restored: bool,
) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    let mut line = format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB",
        ms.ceil().max(1.0) as u64
    );
    if let Some(used) = max_used_mb {
        let _ = write!(line, "\tMax Memory Used: {used} MB");
    }
    if let Some(init) = init {
        let what = if restored { "Restore" } else { "Init" };
        let _ = write!(
            line,
            "\t{what} Duration: {:.2} ms",
            init.as_secs_f64() * 1e3
        );
    }
    line
}

/// A model's START, error (if any), END and REPORT lines, made from its record when its
/// logs are read (numbered with the record's number).
pub fn record_lines(r: &crate::InvocationRecord) -> Vec<crate::LogRecord> {
    let id = &r.request_id;
    let mut text = vec![format!("START RequestId: {id} Version: {}", r.version)];
    if let Some(e) = &r.error {
        text.push(format!("RequestId: {id} Error: {e}"));
    }
    text.push(format!("END RequestId: {id}"));
    let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1e3);
    text.push(report_line(
        id,
        ms(r.duration_ms),
        r.memory_mb,
        r.max_memory_used_mb,
        r.init_ms.map(ms),
        false,
    ));
    let at = r.start_ms + (r.queue_wait_ms + r.init_ms.unwrap_or(0.0) + r.duration_ms) as i64;
    text.into_iter()
        .map(|message| crate::LogRecord {
            seq: r.seq,
            timestamp_ms: at,
            timestamp: crate::time::rfc3339_ms(at),
            request_id: Some(id.clone()),
            stream: LogStream::Platform,
            message,
        })
        .collect()
}
