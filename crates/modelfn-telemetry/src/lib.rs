//! Telemetry: the invocation log store (function output and Lambda's START/END/REPORT
//! lines). Metrics, traces and cost reports will live here too.

pub mod logs;
pub mod time;

pub use logs::{LogQuery, LogRecord, LogStore};
