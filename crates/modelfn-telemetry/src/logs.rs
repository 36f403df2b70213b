//! The log store: every line a function writes (stdout, stderr) and modelfn's own
//! `START`/`END`/`REPORT` lines, tagged with the function, the request id and a sequence
//! number. The newest lines of each function stay in memory for queries (`modelfn logs`);
//! every line is also appended to `<data dir>/logs/<function>.log`.
//!
//! Both are bounded, since a function's output is an attacker's: memory per function by
//! line count and by bytes; each file is rotated to `<function>.log.1` past
//! [`ROTATE_FILE_BYTES`], so a function's logs on disk stay under twice that.

use crate::time::{now_ms, rfc3339_ms};
use modelfn_core::{LogSink, LogStream};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Lines kept in memory per function.
pub const KEEP_PER_FUNCTION: usize = 20_000;
/// Bytes of lines kept in memory per function.
pub const KEEP_BYTES_PER_FUNCTION: usize = 16 * 1024 * 1024;
/// Size at which a function's log file is rotated.
pub const ROTATE_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One stored line.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LogRecord {
    pub seq: u64,
    pub timestamp_ms: i64,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub stream: LogStream,
    pub message: String,
}

/// Which lines to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only lines at or after this time.
    pub since_ms: Option<i64>,
    /// Only lines with a sequence number above this (to follow).
    pub after_seq: Option<u64>,
    pub request_id: Option<String>,
    /// Only lines containing this text.
    pub contains: Option<String>,
    /// At most this many (the newest), default 1000.
    pub limit: Option<usize>,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    lines: HashMap<String, (VecDeque<LogRecord>, usize)>,
    files: HashMap<String, (std::fs::File, u64)>,
}

/// The store. Share it behind an `Arc`; it is also the runtimes' `LogSink`.
pub struct LogStore {
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl LogStore {
    /// A store that also appends to files under `dir` (none: memory only).
    pub fn new(dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(LogStore {
            dir,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Lines of `function` matching `q`, oldest first.
    pub fn query(&self, function: &str, q: &LogQuery) -> Vec<LogRecord> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some((lines, _)) = inner.lines.get(function) else {
            return Vec::new();
        };
        let limit = q.limit.unwrap_or(1000);
        let mut out: Vec<LogRecord> = lines
            .iter()
            .rev()
            .filter(|r| q.after_seq.is_none_or(|s| r.seq > s))
            .filter(|r| q.since_ms.is_none_or(|t| r.timestamp_ms >= t))
            .filter(|r| {
                q.request_id
                    .as_deref()
                    .is_none_or(|id| r.request_id.as_deref() == Some(id))
            })
            .filter(|r| q.contains.as_deref().is_none_or(|t| r.message.contains(t)))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Forgets a deleted function's lines in memory (its file stays).
    pub fn forget(&self, function: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.lines.remove(function);
        inner.files.remove(function);
    }
}

/// What a record costs in memory, roughly.
fn held_bytes(r: &LogRecord) -> usize {
    r.message.len() + r.request_id.as_ref().map_or(0, String::len) + 64
}

impl LogSink for LogStore {
    fn line(&self, function: &str, request_id: Option<&str>, stream: LogStream, text: &str) {
        let ts = now_ms();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.seq += 1;
        let record = LogRecord {
            seq: inner.seq,
            timestamp_ms: ts,
            timestamp: rfc3339_ms(ts),
            request_id: request_id.map(str::to_string),
            stream,
            message: text.to_string(),
        };
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{function}.log"));
            if !inner.files.contains_key(function) {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path);
                if let Ok(f) = file {
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    inner.files.insert(function.to_string(), (f, size));
                }
            }
            let rotate = match inner.files.get_mut(function) {
                Some((f, size)) => {
                    let line = format!(
                        "{}\t{}\t{}\n",
                        record.timestamp,
                        request_id.unwrap_or("-"),
                        text
                    );
                    if f.write_all(line.as_bytes()).is_ok() {
                        *size += line.len() as u64;
                    }
                    *size >= ROTATE_FILE_BYTES
                }
                None => false,
            };
            if rotate {
                inner.files.remove(function);
                let _ = std::fs::rename(&path, dir.join(format!("{function}.log.1")));
            }
        }
        let size = held_bytes(&record);
        let (lines, bytes) = inner.lines.entry(function.to_string()).or_default();
        *bytes += size;
        lines.push_back(record);
        while lines.len() > KEEP_PER_FUNCTION
            || (*bytes > KEEP_BYTES_PER_FUNCTION && lines.len() > 1)
        {
            match lines.pop_front() {
                Some(old) => *bytes -= held_bytes(&old),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_filters_and_appends_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(Some(dir.path().to_path_buf())).unwrap();
        store.line("f", Some("a"), LogStream::Platform, "START RequestId: a");
        store.line("f", Some("a"), LogStream::Stdout, "hello");
        store.line("g", Some("b"), LogStream::Stdout, "other function");
        store.line("f", Some("c"), LogStream::Stderr, "boom");
        let all = store.query("f", &LogQuery::default());
        assert_eq!(
            all.iter().map(|r| r.message.as_str()).collect::<Vec<_>>(),
            ["START RequestId: a", "hello", "boom"]
        );
        let by_id = store.query(
            "f",
            &LogQuery {
                request_id: Some("a".into()),
                ..Default::default()
            },
        );
        assert_eq!(by_id.len(), 2);
        let after = store.query(
            "f",
            &LogQuery {
                after_seq: Some(all[1].seq),
                ..Default::default()
            },
        );
        assert_eq!(after[0].message, "boom");
        let newest = store.query(
            "f",
            &LogQuery {
                limit: Some(1),
                ..Default::default()
            },
        );
        assert_eq!(newest[0].message, "boom");
        assert_eq!(
            store
                .query(
                    "f",
                    &LogQuery {
                        contains: Some("ell".into()),
                        ..Default::default()
                    }
                )
                .len(),
            1
        );
        let file = std::fs::read_to_string(dir.path().join("f.log")).unwrap();
        assert_eq!(file.lines().count(), 3);
        assert!(file.lines().nth(1).unwrap().ends_with("\ta\thello"));
    }

    #[test]
    fn memory_and_files_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::new(Some(dir.path().to_path_buf())).unwrap();
        let big = "x".repeat(256 * 1024);
        // 160 MB of output through one function.
        for _ in 0..640 {
            store.line("f", None, LogStream::Stdout, &big);
        }
        let kept: usize = store
            .query(
                "f",
                &LogQuery {
                    limit: Some(usize::MAX),
                    ..Default::default()
                },
            )
            .iter()
            .map(|r| r.message.len())
            .sum();
        assert!(
            kept <= KEEP_BYTES_PER_FUNCTION,
            "{kept} bytes kept in memory"
        );
        let on_disk: u64 = ["f.log", "f.log.1"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum();
        assert!(on_disk <= 2 * ROTATE_FILE_BYTES, "{on_disk} bytes on disk");
        assert!(dir.path().join("f.log.1").exists(), "rotated");
    }
}
