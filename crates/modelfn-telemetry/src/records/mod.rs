//! Invocation records: one per invocation of every function, native models included:
//! who ran (function, version), when, how long it waited, started and ran, what was
//! billed, the memory, cold or warm, and how it ended.
//!
//! The request path only hands a record to a bounded queue (`inbox`: a push under a
//! short lock, no I/O); when the queue is full the record is counted as dropped, never
//! waited for. A writer thread drains the queue into JSON-lines
//! segment files under `<data dir>/records/`, flushed at least every
//! [`FLUSH_EVERY`], a new segment every hour or [`SEGMENT_BYTES`]. Whole segments go
//! past the retention age or the total size. Queries scan segments newest first. Why
//! files and not the registry database: see ARCHITECTURE.md.

mod inbox;
pub(crate) mod recorder;
mod writer;

pub use recorder::Recorder;

use modelfn_core::Outcome;
use recorder::Pending;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use writer::{last_seq, segments, Writer};

/// Records waiting for the writer at most: a third of a second at 100,000 a second, 30
/// times what arrives between two drains (memory taken as records wait, up to about
/// 12 MB, and kept for the next burst).
pub const QUEUE: usize = 32_768;
/// How often the writer takes what is queued.
pub const DRAIN_EVERY: Duration = Duration::from_millis(10);
/// Records become readable within this.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A segment is closed at this size (or when the hour changes).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Longest error message kept in a record.
pub(crate) const MAX_ERROR: usize = 512;

/// One invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// Numbered by this node's writer, ascending.
    #[serde(default)]
    pub seq: u64,
    pub request_id: String,
    pub function: String,
    pub version: u64,
    /// The front door it came through (`native`, `lambda`, … `internal`).
    #[serde(default = "internal")]
    pub door: String,
    /// The alias the caller named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The access key that authenticated it (`admin` for the admin token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// When it arrived, Unix ms.
    pub start_ms: i64,
    pub queue_wait_ms: f64,
    /// Set on a cold start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    pub duration_ms: f64,
    /// As Lambda bills: the run time rounded up to the millisecond (0 when it did not run).
    pub billed_ms: u64,
    pub memory_mb: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_used_mb: Option<u64>,
    pub cold: bool,
    /// Rows in the model batch it ran in (models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_rows: Option<u32>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn internal() -> String {
    "internal".into()
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    /// Only this function's (all functions' when `None`).
    pub function: Option<String>,
    /// Only those that arrived at or after this time.
    pub since_ms: Option<i64>,
    /// Only those numbered above this (to follow).
    pub after_seq: Option<u64>,
    pub request_id: Option<String>,
    /// Only successes (`Some(true)`) or only the others (`Some(false)`).
    pub success: Option<bool>,
    /// At most this many (the newest), default 1000.
    pub limit: Option<usize>,
}

impl RecordQuery {
    fn matches(&self, r: &InvocationRecord) -> bool {
        self.function.as_ref().is_none_or(|f| *f == r.function)
            && self.since_ms.is_none_or(|t| r.start_ms >= t)
            && self.after_seq.is_none_or(|s| r.seq > s)
            && self
                .request_id
                .as_ref()
                .is_none_or(|id| *id == r.request_id)
            && self
                .success
                .is_none_or(|ok| ok == (r.outcome == Outcome::Success))
    }
}

/// Counters of the records' own health.
#[derive(Debug, Default)]
pub struct RecordCounters {
    pub written: AtomicU64,
    /// Records the queue had no room for.
    pub dropped: AtomicU64,
}

/// Where records are kept, and the queue to it.
pub struct RecordStore {
    dir: PathBuf,
    /// Closed once dropped: the writer then writes what is queued and stops.
    queue: Arc<inbox::Inbox<Pending>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    pub counters: Arc<RecordCounters>,
}

impl Drop for RecordStore {
    /// Waits until every queued record is written (at shutdown, nothing accepted is lost).
    fn drop(&mut self) {
        self.queue.close();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            let _ = w.join();
        }
    }
}

/// How long and how much is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(7 * 86_400),
            max_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl RecordStore {
    /// Opens `dir` (made if missing) and starts the writer thread, which stops when the
    /// store is dropped (after writing what is queued).
    pub fn open(dir: &Path, retention: Retention) -> std::io::Result<Arc<RecordStore>> {
        std::fs::create_dir_all(dir)?;
        let queue = Arc::new(inbox::Inbox::new(QUEUE));
        let counters = Arc::new(RecordCounters::default());
        let next_seq = last_seq(dir) + 1;
        let writer = Writer {
            dir: dir.to_path_buf(),
            retention,
            counters: counters.clone(),
            seq: next_seq,
            file: None,
            line: Vec::with_capacity(512),
        };
        let handle = std::thread::Builder::new()
            .name("modelfn-records".into())
            .spawn({
                let queue = queue.clone();
                move || writer.run(&queue)
            })?;
        Ok(Arc::new(RecordStore {
            dir: dir.to_path_buf(),
            queue,
            writer: std::sync::Mutex::new(Some(handle)),
            counters,
        }))
    }

    /// Queues a record; never waits.
    pub fn submit(&self, r: InvocationRecord) {
        self.queue_pending(Pending::from(r));
    }

    fn queue_pending(&self, p: Pending) {
        if self.queue.push(p).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records matching `q`, oldest first (the newest `limit` of them).
    pub fn query(&self, q: &RecordQuery) -> Vec<InvocationRecord> {
        let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
        let mut found: Vec<InvocationRecord> = Vec::new();
        self.scan(q, &mut |segment| {
            let mut here = segment;
            here.append(&mut found);
            found = here;
            found.len() < limit
        });
        let skip = found.len().saturating_sub(limit);
        found.drain(..skip);
        found
    }

    /// Calls `f` with every record matching `q` (ignoring its limit), in no set order.
    pub fn for_each(&self, q: &RecordQuery, f: &mut dyn FnMut(&InvocationRecord)) {
        self.scan(q, &mut |segment| {
            segment.iter().for_each(&mut *f);
            true
        });
    }

    /// Hands each segment's matching records (oldest first) to `visit`, newest segment
    /// first, while it answers true.
    fn scan(&self, q: &RecordQuery, visit: &mut dyn FnMut(Vec<InvocationRecord>) -> bool) {
        // A cheap look at each line before it is parsed.
        let needle_fn = q
            .function
            .as_ref()
            .map(|f| format!("\"function\":{}", json_str(f)));
        let needle_id = q
            .request_id
            .as_ref()
            .map(|i| format!("\"request_id\":{}", json_str(i)));
        for (path, modified_ms) in segments(&self.dir).into_iter().rev() {
            // A segment last written before `since` holds nothing newer.
            if q.since_ms.is_some_and(|t| modified_ms < t) {
                break;
            }
            let Ok(f) = std::fs::File::open(&path) else {
                continue;
            };
            let here: Vec<InvocationRecord> = std::io::BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| needle_fn.as_ref().is_none_or(|n| l.contains(n.as_str())))
                .filter(|l| needle_id.as_ref().is_none_or(|n| l.contains(n.as_str())))
                .filter_map(|l| serde_json::from_str::<InvocationRecord>(&l).ok())
                .filter(|r| q.matches(r))
                .collect();
            if !visit(here) {
                break;
            }
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::now_ms;

    fn record(function: &str, id: &str, outcome: Outcome) -> InvocationRecord {
        InvocationRecord {
            seq: 0,
            request_id: id.into(),
            function: function.into(),
            version: 1,
            door: "native".into(),
            alias: None,
            key_id: Some("AKIDEXAMPLE".into()),
            start_ms: now_ms(),
            queue_wait_ms: 0.1,
            init_ms: None,
            duration_ms: 2.5,
            billed_ms: 3,
            memory_mb: 128,
            max_memory_used_mb: None,
            cold: false,
            batch_rows: Some(3),
            outcome,
            error: None,
        }
    }

    fn wait_for(store: &RecordStore, q: &RecordQuery, n: usize) -> Vec<InvocationRecord> {
        for _ in 0..200 {
            let got = store.query(q);
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        store.query(q)
    }

    #[test]
    fn records_are_written_numbered_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordStore::open(dir.path(), Retention::default()).unwrap();
        for i in 0..10 {
            let outcome = if i == 4 {
                Outcome::FunctionError
            } else {
                Outcome::Success
            };
            store.submit(record(
                if i % 2 == 0 { "a" } else { "b" },
                &format!("id-{i}"),
                outcome,
            ));
        }
        let all = wait_for(&store, &RecordQuery::default(), 10);
        assert_eq!(all.len(), 10);
        let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
        let a = store.query(&RecordQuery {
            function: Some("a".into()),
            ..Default::default()
        });
        assert_eq!(a.len(), 5);
        let failed = store.query(&RecordQuery {
            success: Some(false),
            ..Default::default()
        });
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].request_id, "id-4");
        let one = store.query(&RecordQuery {
            request_id: Some("id-7".into()),
            ..Default::default()
        });
        assert_eq!(one.len(), 1);
        let newest = store.query(&RecordQuery {
            limit: Some(3),
            ..Default::default()
        });
        assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [8, 9, 10]);
        let after = store.query(&RecordQuery {
            after_seq: Some(8),
            ..Default::default()
        });
        assert_eq!(after.len(), 2);
        drop(store);
        // Numbers go on after a restart.
        let store = RecordStore::open(dir.path(), Retention::default()).unwrap();
        store.submit(record("a", "id-10", Outcome::Success));
        let got = wait_for(
            &store,
            &RecordQuery {
                after_seq: Some(10),
                ..Default::default()
            },
            1,
        );
        assert_eq!(got[0].seq, 11);
    }

    #[test]
    fn a_line_reads_back_as_the_record_it_was() {
        let mut r = record("fn-1", "id \"quoted\"\n", Outcome::Timeout);
        r.seq = 42;
        r.init_ms = Some(1234.567);
        r.max_memory_used_mb = Some(77);
        r.error = Some("Task timed out after 3.00 seconds: \"x\"\t\u{1}".into());
        r.queue_wait_ms = 0.012;
        r.duration_ms = 3000.001;
        let mut line = Vec::new();
        Pending::from(r.clone()).encode(42, &mut line);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: InvocationRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        // A long name or id is kept whole.
        let long = "x".repeat(300);
        let mut line = Vec::new();
        Pending::from(record(&long, &long, Outcome::Success)).encode(1, &mut line);
        let back: InvocationRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!((back.function.len(), back.request_id.len()), (300, 300));
    }

    #[test]
    fn whole_segments_go_past_the_age_and_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
        for (first, old, size) in [
            (1, true, 10),
            (5, false, 3000),
            (9, false, 3000),
            (13, false, 10),
        ] {
            let path = dir.path().join(format!("{first:020}.jsonl"));
            std::fs::write(&path, vec![b'\n'; size]).unwrap();
            if old {
                let f = std::fs::File::options().write(true).open(&path).unwrap();
                f.set_modified(day_ago).unwrap();
            }
        }
        let retention = Retention {
            max_age: Duration::from_secs(3600),
            max_bytes: 4000,
        };
        let _store = RecordStore::open(dir.path(), retention).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<u64> = segments(dir.path())
            .iter()
            .filter_map(|(p, _)| p.file_stem()?.to_str()?.parse().ok())
            .collect();
        // The day-old one by age; the oldest 3000 bytes by size; never the newest.
        assert_eq!(left, [9, 13]);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let store = RecordStore {
            dir: PathBuf::from("/nonexistent"),
            queue: Arc::new(inbox::Inbox::new(1)),
            writer: std::sync::Mutex::new(None),
            counters: Arc::default(),
        };
        for i in 0..3 {
            store.submit(record("a", &i.to_string(), Outcome::Success));
        }
        assert_eq!(store.counters.dropped.load(Ordering::Relaxed), 2);
    }
}
