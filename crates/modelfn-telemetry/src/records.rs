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
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records waiting for the writer at most: a third of a second at 100,000 a second, 30
/// times what arrives between two drains (the queue's slots are allocated up front, about
/// 8 MB).
pub const QUEUE: usize = 32_768;
/// How often the writer takes what is queued.
pub const DRAIN_EVERY: Duration = Duration::from_millis(10);
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
    /// `None` once dropped: the writer then writes what is queued and stops.
    queue: Option<SyncSender<Pending>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    pub counters: Arc<RecordCounters>,
}

impl Drop for RecordStore {
    /// Waits until every queued record is written (at shutdown, nothing accepted is lost).
    fn drop(&mut self) {
        self.queue = None;
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
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
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
            .spawn(move || writer.run(rx))?;
        Ok(Arc::new(RecordStore {
            dir: dir.to_path_buf(),
            queue: Some(tx),
            writer: std::sync::Mutex::new(Some(handle)),
            counters,
        }))
    }

    /// Queues a record; never waits.
    pub fn submit(&self, r: InvocationRecord) {
        self.queue_pending(Pending::from(r));
    }

    fn queue_pending(&self, p: Pending) {
        let sent = match &self.queue {
            Some(q) => q.try_send(p),
            None => Err(TrySendError::Disconnected(p)),
        };
        match sent {
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
    /// The line being made, reused.
    line: Vec<u8>,
}

impl Writer {
    /// Wakes every [`DRAIN_EVERY`] and takes what is queued. It never blocks on the
    /// queue: a sender then never has a sleeping writer to wake (a system call per record
    /// at tens of thousands a second).
    fn run(mut self, rx: Receiver<Pending>) {
        let mut last_flush = Instant::now();
        let mut last_sweep = Instant::now();
        self.sweep();
        loop {
            std::thread::sleep(DRAIN_EVERY);
            let hour = now_ms() / 3_600_000;
            loop {
                match rx.try_recv() {
                    Ok(p) => self.write(&p, hour),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.flush();
                        return;
                    }
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

    fn write(&mut self, p: &Pending, hour: i64) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        p.encode(self.seq, &mut line);
        self.append(&line, hour);
        self.line = line;
    }

    fn append(&mut self, line: &[u8], hour: i64) {
        let rotate = self
            .file
            .as_ref()
            .is_none_or(|f| f.hour != hour || f.bytes + line.len() as u64 > SEGMENT_BYTES);
        if rotate {
            self.flush();
            // Each new segment is a moment to keep within the size too: at 90,000 records
            // a second one fills in seconds, faster than the minute's sweep.
            if self.file.is_some() {
                self.sweep();
            }
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
            if f.out.write_all(line).is_ok() {
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
    /// one being written). Runs at start, every minute and at each new segment.
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

/// Text kept inline when short, so that a record costs the request path no allocation
/// (nor the writer thread a free of another thread's memory); boxed when long.
enum Text {
    Inline { len: u8, buf: [u8; 64] },
    Boxed(Box<str>),
}

impl Text {
    fn new(s: &str) -> Text {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= 64 => {
                let mut buf = [0u8; 64];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                Text::Inline { len, buf }
            }
            _ => Text::Boxed(s.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // A whole `&str` was copied in, so its bytes are UTF-8.
            Text::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Text::Boxed(b) => b,
        }
    }
}

/// A record as queued: what the request path knows, unformatted.
struct Pending {
    request_id: Text,
    function: Text,
    version: u64,
    start_ms: i64,
    queue_wait: Duration,
    init: Option<Duration>,
    run: Duration,
    billed_ms: u64,
    memory_mb: u32,
    max_memory_used_mb: Option<u64>,
    cold: bool,
    outcome: Outcome,
    error: Option<String>,
}

impl Pending {
    /// The record as one JSON line, numbered `seq`: what [`InvocationRecord`] reads,
    /// written field by field (no intermediate strings; milliseconds to the microsecond).
    fn encode(&self, seq: u64, out: &mut Vec<u8>) {
        let ms = |out: &mut Vec<u8>, d: Duration| {
            let us = d.as_micros();
            let _ = write!(out, "{}.{:03}", us / 1000, us % 1000);
        };
        let text = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        let _ = write!(out, "{{\"seq\":{seq},\"request_id\":");
        text(out, self.request_id.as_str());
        out.extend_from_slice(b",\"function\":");
        text(out, self.function.as_str());
        let _ = write!(
            out,
            ",\"version\":{},\"start_ms\":{},\"queue_wait_ms\":",
            self.version, self.start_ms
        );
        ms(out, self.queue_wait);
        if let Some(init) = self.init {
            out.extend_from_slice(b",\"init_ms\":");
            ms(out, init);
        }
        out.extend_from_slice(b",\"duration_ms\":");
        ms(out, self.run);
        let _ = write!(
            out,
            ",\"billed_ms\":{},\"memory_mb\":{}",
            self.billed_ms, self.memory_mb
        );
        if let Some(m) = self.max_memory_used_mb {
            let _ = write!(out, ",\"max_memory_used_mb\":{m}");
        }
        let _ = write!(
            out,
            ",\"cold\":{},\"outcome\":\"{}\"",
            self.cold,
            self.outcome.as_str()
        );
        if let Some(e) = &self.error {
            out.extend_from_slice(b",\"error\":");
            text(out, e);
        }
        out.extend_from_slice(b"}\n");
    }
}

impl From<InvocationRecord> for Pending {
    fn from(r: InvocationRecord) -> Pending {
        let d = |ms: f64| Duration::from_secs_f64(ms.max(0.0) / 1e3);
        Pending {
            request_id: Text::new(&r.request_id),
            function: Text::new(&r.function),
            version: r.version,
            start_ms: r.start_ms,
            queue_wait: d(r.queue_wait_ms),
            init: r.init_ms.map(d),
            run: d(r.duration_ms),
            billed_ms: r.billed_ms,
            memory_mb: r.memory_mb,
            max_memory_used_mb: r.max_memory_used_mb,
            cold: r.cold,
            outcome: r.outcome,
            error: r.error,
        }
    }
}

impl InvocationObserver for Recorder {
    fn observe(&self, who: &Observed<'_>, phase: Phase<'_>) {
        let now = now_ms();
        let pending = match phase {
            Phase::Start => return,
            Phase::NotRun(e) => Pending {
                request_id: Text::new(who.request_id),
                function: Text::new(who.function),
                version: who.version,
                start_ms: now,
                queue_wait: Duration::ZERO,
                init: None,
                run: Duration::ZERO,
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
                Pending {
                    request_id: Text::new(who.request_id),
                    function: Text::new(who.function),
                    version: who.version,
                    start_ms: now - took.as_millis() as i64,
                    queue_wait: report.queue_wait,
                    init: report.init_duration,
                    run: report.duration,
                    // As Lambda bills: rounded up to the millisecond.
                    billed_ms: report.duration.as_micros().div_ceil(1000).max(1) as u64,
                    memory_mb: who.memory_mb,
                    max_memory_used_mb,
                    cold: report.cold_start,
                    outcome: error.map_or(Outcome::Success, Outcome::of_error),
                    error: error.map(error_text),
                }
            }
        };
        self.store.queue_pending(pending);
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
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        let store = RecordStore {
            dir: PathBuf::from("/nonexistent"),
            queue: Some(tx),
            writer: std::sync::Mutex::new(None),
            counters: Arc::default(),
        };
        for i in 0..3 {
            store.submit(record("a", &i.to_string(), Outcome::Success));
        }
        assert_eq!(store.counters.dropped.load(Ordering::Relaxed), 2);
    }
}
