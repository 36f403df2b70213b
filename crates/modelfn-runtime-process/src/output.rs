//! A function process's stdout and stderr, line by line, into the log sink, tagged with
//! the request the process is working on. Before an invocation is reported finished,
//! [`OutputCapture::drain`] waits until everything the process wrote has been read, so
//! that its lines come before `END` in the log.

use modelfn_core::{LogSink, LogStream};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Longest line kept, as Lambda (256 KB); longer lines are cut.
const MAX_LINE: usize = 256 * 1024;
/// Lines of stderr kept to explain a process that dies while starting.
const TAIL: usize = 20;

pub struct OutputCapture {
    fds: Vec<RawFd>,
    busy: Vec<Arc<AtomicBool>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// Where captured lines go.
#[derive(Clone)]
pub struct Target {
    pub function: String,
    pub current: Arc<Mutex<Option<String>>>,
    pub logs: Arc<dyn LogSink>,
}

impl OutputCapture {
    pub fn start(
        stdout: impl AsyncRead + AsRawFd + Unpin + Send + 'static,
        stderr: impl AsyncRead + AsRawFd + Unpin + Send + 'static,
        target: Target,
    ) -> OutputCapture {
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let mut cap = OutputCapture {
            fds: Vec::new(),
            busy: Vec::new(),
            tail: tail.clone(),
        };
        cap.fds.push(stdout.as_raw_fd());
        cap.fds.push(stderr.as_raw_fd());
        let b1 = Arc::new(AtomicBool::new(false));
        let b2 = Arc::new(AtomicBool::new(false));
        cap.busy.push(b1.clone());
        cap.busy.push(b2.clone());
        tokio::spawn(read_lines(
            stdout,
            LogStream::Stdout,
            target.clone(),
            b1,
            None,
        ));
        tokio::spawn(read_lines(
            stderr,
            LogStream::Stderr,
            target,
            b2,
            Some(tail),
        ));
        cap
    }

    /// Waits (at most 100 ms) until the pipes are empty and every line read is logged.
    pub async fn drain(&self) {
        for _ in 0..200 {
            let pending = self.fds.iter().any(|fd| bytes_waiting(*fd) > 0);
            let busy = self.busy.iter().any(|b| b.load(Ordering::Acquire));
            if !pending && !busy {
                return;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// The last lines the process wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn bytes_waiting(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int; the fd stays open while its reader task runs, and
    // an fd that has closed answers an error, which counts as nothing waiting.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        n
    }
}

/// Reads lines with at most [`MAX_LINE`] bytes of one held: the rest of a longer line is
/// counted and dropped as it arrives, so output without newlines cannot grow the server.
async fn read_lines(
    stream: impl AsyncRead + Unpin,
    which: LogStream,
    target: Target,
    busy: Arc<AtomicBool>,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = Vec::new();
    let mut cut = 0usize;
    loop {
        busy.store(false, Ordering::Release);
        let buf = match reader.fill_buf().await {
            Ok(b) => b,
            Err(_) => return,
        };
        if buf.is_empty() {
            if !line.is_empty() || cut > 0 {
                emit(&line, cut, which, &target, tail.as_deref());
            }
            return;
        }
        busy.store(true, Ordering::Release);
        let (chunk, used, ends) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = MAX_LINE.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        cut += chunk.len() - room;
        reader.consume(used);
        if ends {
            emit(&line, cut, which, &target, tail.as_deref());
            line.clear();
            cut = 0;
        }
    }
}

fn emit(
    line: &[u8],
    cut: usize,
    which: LogStream,
    target: &Target,
    tail: Option<&Mutex<VecDeque<String>>>,
) {
    let text = String::from_utf8_lossy(line);
    let mut line = text.trim_end_matches('\r').to_string();
    if cut > 0 {
        line.push_str(&format!(" [line cut: {cut} more bytes]"));
    }
    let id = target.current.lock().ok().and_then(|c| c.clone());
    target
        .logs
        .line(&target.function, id.as_deref(), which, &line);
    if let Some(t) = tail {
        if let Ok(mut t) = t.lock() {
            if t.len() == TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}
