//! Telemetry: the invocation log store (function output); [`LambdaLines`], the observer
//! of the scheduler's invocations that writes Lambda's START/END/REPORT lines;
//! [`records`], a record of every invocation and the [`Recorder`] observer that makes
//! them; [`cost`], what recorded usage would cost on Lambda.

pub mod cost;
pub mod lambda_lines;
pub mod logs;
pub mod records;
pub mod time;

pub use lambda_lines::LambdaLines;
pub use logs::{LogQuery, LogRecord, LogStore};
pub use records::{InvocationRecord, Observers, RecordQuery, RecordStore, Recorder, Retention};
