//! Invocation records: one per invocation of every function, native models included:
//! who ran (function, version), when, how long it waited, started and ran, what was
//! billed, the memory, cold or warm, and how it ended.
//!
//! The request path only hands a record to a bounded queue (`try_send` on a
//! `sync_channel`: no lock of ours, no I/O); when the queue is full the record is counted
//! as dropped, never waited for. A writer thread drains the queue into JSON-lines
//! segment files under `<data dir>/records/`, flushed at least every
//! [`FLUSH_EVERY`], a new segment every hour or [`SEGMENT_BYTES`]. Whole segments go
//! past the retention age or the total size. Queries scan segments newest first. Why
//! files and not the registry database: see ARCHITECTURE.md.

use crate::time::now_ms;
use modelfn_core::{InvocationObserver, InvokeError, Observed, Outcome, Phase};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records waiting for the writer at most.
pub const QUEUE: usize = 262_144;
/// Records become readable within this.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A segment is closed at this size (or when the hour changes).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Longest error message kept in a record.
const MAX_ERROR: usize = 512;

/// One invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// Numbered by this node's writer, ascending.
    #[serde(default)]
    pub seq: u64,
    pub request_id: String,
    pub function: String,
    pub version: u64,
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
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    queue: SyncSender<InvocationRecord>,
    pub counters: Arc<RecordCounters>,
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
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let counters = Arc::new(RecordCounters::default());
        let next_seq = last_seq(dir) + 1;
        let writer = Writer {
            dir: dir.to_path_buf(),
            retention,
            counters: counters.clone(),
            seq: next_seq,
            file: None,
        };
        std::thread::Builder::new()
            .name("modelfn-records".into())
            .spawn(move || writer.run(rx))?;
        Ok(Arc::new(RecordStore {
            dir: dir.to_path_buf(),
            queue: tx,
            counters,
        }))
    }

    /// Queues a record; never waits.
    pub fn submit(&self, r: InvocationRecord) {
        match self.queue.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
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

/// Segment files, oldest first, with when each was last written (Unix ms).
fn segments(dir: &Path) -> Vec<(PathBuf, i64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, i64, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let first: u64 = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()?;
            let modified = e.metadata().ok()?.modified().ok()?;
            let ms = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            Some((path, ms, first))
        })
        .collect();
    // Named by their first record's number: that is their order.
    out.sort_by_key(|(_, _, first)| *first);
    out.into_iter().map(|(p, ms, _)| (p, ms)).collect()
}

/// The highest record number on disk (0 with none), so numbers go on after a restart.
fn last_seq(dir: &Path) -> u64 {
    let Some((path, _)) = segments(dir).pop() else {
        return 0;
    };
    let Ok(f) = std::fs::File::open(&path) else {
        return 0;
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<InvocationRecord>(&l).ok())
        .map(|r| r.seq)
        .max()
        .unwrap_or(0)
}

struct Segment {
    out: BufWriter<std::fs::File>,
    bytes: u64,
    hour: i64,
}

struct Writer {
    dir: PathBuf,
    retention: Retention,
    counters: Arc<RecordCounters>,
    seq: u64,
    file: Option<Segment>,
}

impl Writer {
    fn run(mut self, rx: Receiver<InvocationRecord>) {
        let mut last_flush = Instant::now();
        let mut last_sweep = Instant::now();
        self.sweep();
        loop {
            let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            match rx.recv_timeout(wait.max(Duration::from_millis(1))) {
                Ok(r) => {
                    self.write(r);
                    // Take what else is queued without waiting.
                    while let Ok(r) = rx.try_recv() {
                        self.write(r);
                        if last_flush.elapsed() >= FLUSH_EVERY {
                            break;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.flush();
                last_flush = Instant::now();
            }
            if last_sweep.elapsed() >= Duration::from_secs(60) {
                self.sweep();
                last_sweep = Instant::now();
            }
        }
    }

    fn write(&mut self, mut r: InvocationRecord) {
        r.seq = self.seq;
        let Ok(mut line) = serde_json::to_vec(&r) else {
            return;
        };
        line.push(b'\n');
        let hour = now_ms() / 3_600_000;
        let rotate = self
            .file
            .as_ref()
            .is_none_or(|f| f.hour != hour || f.bytes + line.len() as u64 > SEGMENT_BYTES);
        if rotate {
            self.flush();
            let path = self.dir.join(format!("{:020}.jsonl", self.seq));
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                Ok(f) => {
                    self.file = Some(Segment {
                        out: BufWriter::with_capacity(256 * 1024, f),
                        bytes: 0,
                        hour,
                    })
                }
                Err(e) => {
                    tracing_free_warn(&format!("invocation records: {}: {e}", path.display()));
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        if let Some(f) = self.file.as_mut() {
            if f.out.write_all(&line).is_ok() {
                f.bytes += line.len() as u64;
                self.seq += 1;
                self.counters.written.fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.out.flush();
        }
    }

    /// Removes whole segments past the age, then the oldest past the size (never the
    /// one being written).
    fn sweep(&mut self) {
        let all = segments(&self.dir);
        let current = all.last().map(|(p, _)| p.clone());
        let too_old = now_ms() - self.retention.max_age.as_millis() as i64;
        let mut total: u64 = all
            .iter()
            .filter_map(|(p, _)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        for (path, modified) in all {
            if Some(&path) == current.as_ref() {
                break;
            }
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let expired = modified < too_old || total > self.retention.max_bytes;
            if expired && std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(size);
            }
        }
    }
}

/// The writer thread has no tracing subscriber of its own to rely on; stderr is enough.
fn tracing_free_warn(msg: &str) {
    eprintln!("modelfn: {msg}");
}

/// The observer that makes a record of every invocation.
pub struct Recorder {
    store: Arc<RecordStore>,
}

impl Recorder {
    pub fn new(store: Arc<RecordStore>) -> Self {
        Recorder { store }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn error_text(e: &InvokeError) -> String {
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

impl InvocationObserver for Recorder {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        let now = now_ms();
        let record = match phase {
            Phase::Start => return,
            Phase::NotRun(e) => InvocationRecord {
                seq: 0,
                request_id: who.request_id.to_string(),
                function: who.function.to_string(),
                version: who.version,
                start_ms: now,
                queue_wait_ms: 0.0,
                init_ms: None,
                duration_ms: 0.0,
                billed_ms: 0,
                memory_mb: who.memory_mb,
                max_memory_used_mb: None,
                cold: false,
                outcome: Outcome::of_error(e),
                error: Some(error_text(e)),
            },
            Phase::Ran {
                report,
                max_memory_used_mb,
                error,
                ..
            } => {
                let took =
                    report.queue_wait + report.init_duration.unwrap_or_default() + report.duration;
                InvocationRecord {
                    seq: 0,
                    request_id: who.request_id.to_string(),
                    function: who.function.to_string(),
                    version: who.version,
                    start_ms: now - took.as_millis() as i64,
                    queue_wait_ms: ms(report.queue_wait),
                    init_ms: report.init_duration.map(ms),
                    duration_ms: ms(report.duration),
                    billed_ms: (ms(report.duration).ceil() as u64).max(1),
                    memory_mb: who.memory_mb,
                    max_memory_used_mb,
                    cold: report.cold_start,
                    outcome: error.map_or(Outcome::Success, Outcome::of_error),
                    error: error.map(error_text),
                }
            }
        };
        self.store.submit(record);
    }
}

/// Several observers, each told every event in turn.
pub struct Observers(pub Vec<Arc<dyn InvocationObserver>>);

impl InvocationObserver for Observers {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        for o in &self.0 {
            o.observe(who, phase);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(function: &str, id: &str, outcome: Outcome) -> InvocationRecord {
        InvocationRecord {
            seq: 0,
            request_id: id.into(),
            function: function.into(),
            version: 1,
            start_ms: now_ms(),
            queue_wait_ms: 0.1,
            init_ms: None,
            duration_ms: 2.5,
            billed_ms: 3,
            memory_mb: 128,
            max_memory_used_mb: None,
            cold: false,
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
        std::thread::sleep(Duration::from_millis(200));
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
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        let store = RecordStore {
            dir: PathBuf::from("/nonexistent"),
            queue: tx,
            counters: Arc::default(),
        };
        for i in 0..3 {
            store.submit(record("a", &i.to_string(), Outcome::Success));
        }
        assert_eq!(store.counters.dropped.load(Ordering::Relaxed), 2);
    }
}
