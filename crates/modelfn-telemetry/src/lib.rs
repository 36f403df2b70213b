//! Telemetry: the invocation log store (function output); [`LambdaLines`], the observer
//! of the scheduler's invocations that writes Lambda's START/END/REPORT lines;
//! [`records`], a record of every invocation and the [`Recorder`] observer that makes
//! them; [`traces`], the [`Tracer`] that keeps traces of invocations and exports them
//! over OTLP; [`cost`], what recorded usage would cost on Lambda.

pub mod cost;
pub mod lambda_lines;
pub mod logs;
pub mod records;
mod text;
pub mod time;
pub mod traces;

pub use lambda_lines::LambdaLines;
pub use logs::{LogQuery, LogRecord, LogStore};
pub use records::{InvocationRecord, RecordQuery, RecordStore, Recorder, Retention};
pub use traces::{OtlpConfig, TraceConfig, TraceView, Tracer};

use modelfn_core::{InvocationObserver, Observed, Phase};
use std::sync::Arc;

/// Several observers, each told every event in turn.
pub struct Observers(pub Vec<Arc<dyn InvocationObserver>>);

impl InvocationObserver for Observers {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        for o in &self.0 {
            o.observe(who, phase);
        }
    }
}
