//! Where function output goes: runtimes and the scheduler write lines to a `LogSink`
//! (the telemetry crate stores them), tagged with the function and the request.

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Written by modelfn itself (`START`, `END`, `REPORT`, platform messages).
    Platform,
}

/// Receives log lines.
pub trait LogSink: Send + Sync + 'static {
    fn line(&self, function: &str, request_id: Option<&str>, stream: LogStream, text: &str);
}

/// A sink that drops everything (tests, tools).
pub struct NoLogs;

impl LogSink for NoLogs {
    fn line(&self, _: &str, _: Option<&str>, _: LogStream, _: &str) {}
}
