//! The writer thread: drains the queue into JSON-lines segment files, rotates them by
//! the hour and size, and removes whole segments past the retention.

use super::{
    InvocationRecord, Pending, RecordCounters, Retention, DRAIN_EVERY, FLUSH_EVERY, SEGMENT_BYTES,
};
use crate::time::now_ms;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Segment files, oldest first, with when each was last written (Unix ms).
pub(super) fn segments(dir: &Path) -> Vec<(PathBuf, i64)> {
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
pub(super) fn last_seq(dir: &Path) -> u64 {
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

pub(super) struct Segment {
    out: BufWriter<std::fs::File>,
    bytes: u64,
    hour: i64,
}

pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) retention: Retention,
    pub(super) counters: Arc<RecordCounters>,
    pub(super) seq: u64,
    pub(super) file: Option<Segment>,
    /// The line being made, reused.
    pub(super) line: Vec<u8>,
}

impl Writer {
    /// Wakes every [`DRAIN_EVERY`] and takes what is queued. It never blocks on the
    /// queue: a sender then never has a sleeping writer to wake (a system call per record
    /// at tens of thousands a second).
    pub(super) fn run(mut self, queue: &super::inbox::Inbox<Pending>) {
        let mut last_flush = Instant::now();
        let mut last_sweep = Instant::now();
        // The buffer the queue's records come out in, handed back to it emptied.
        let mut taken: Vec<Pending> = queue.spare();
        self.sweep();
        loop {
            std::thread::sleep(DRAIN_EVERY);
            let hour = now_ms() / 3_600_000;
            let open = queue.take(&mut taken);
            for p in taken.drain(..) {
                self.write(&p, hour);
            }
            if !open {
                self.flush();
                return;
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
