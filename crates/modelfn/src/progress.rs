//! What a long CLI step shows while it runs, on one line of stderr rewritten in place: an
//! upload's bytes sent, or the line a child process (pip) printed last. Only on a
//! terminal: in a pipe or a CI log each step prints its one closing line.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);
/// Bytes handed to the connection at a time.
const CHUNK: usize = 256 * 1024;

/// One line of stderr, redrawn while a step runs.
pub struct Line {
    tty: bool,
    drawn: Option<Instant>,
}

impl Line {
    pub fn new() -> Self {
        Line {
            tty: std::io::stderr().is_terminal(),
            drawn: None,
        }
    }

    /// Redraws the line with `text` (cut to 100 characters), at most every [`REDRAW`].
    pub fn show(&mut self, text: &str) {
        if !self.tty || self.drawn.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let cut: String = text.chars().take(100).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{cut}");
        let _ = err.flush();
    }

    /// Ends the step with `text` on a line of its own (on a terminal, in place of the
    /// line being redrawn).
    pub fn finish(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty && self.drawn.is_some() {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
        self.drawn = None;
    }
}

/// A request body that shows how much of it was sent.
struct Upload {
    data: Bytes,
    sent: usize,
    label: String,
    line: Line,
}

fn mb(n: usize) -> String {
    if n < 1_000_000 {
        format!("{:.0} KB", n as f64 / 1e3)
    } else {
        format!("{:.1} MB", n as f64 / 1e6)
    }
}

impl Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let total = this.data.len();
        if this.sent >= total {
            return Poll::Ready(None);
        }
        let end = (this.sent + CHUNK).min(total);
        let chunk = this.data.slice(this.sent..end);
        this.sent = end;
        let text = format!(
            "uploading {}: {} of {} ({}%)",
            this.label,
            mb(end),
            mb(total),
            end * 100 / total.max(1)
        );
        if end == total {
            this.line
                .finish(&format!("uploaded {}: {}", this.label, mb(total)));
        } else {
            this.line.show(&text);
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.data.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.sent) as u64)
    }
}

/// `data` as a request body that shows its upload on a terminal (as it is otherwise).
pub fn upload(data: Vec<u8>, label: &str) -> reqwest::Body {
    let line = Line::new();
    if !line.tty {
        return data.into();
    }
    reqwest::Body::wrap(Upload {
        data: Bytes::from(data),
        sent: 0,
        label: label.to_string(),
        line,
    })
}
