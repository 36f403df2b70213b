//! Telemetry: the invocation log store (function output) and [`LambdaLines`], the
//! observer of the scheduler's invocations that writes Lambda's START/END/REPORT lines.
//! Metrics, traces and cost reports will live here too.

pub mod lambda_lines;
pub mod logs;
pub mod time;

pub use lambda_lines::LambdaLines;
pub use logs::{LogQuery, LogRecord, LogStore};
