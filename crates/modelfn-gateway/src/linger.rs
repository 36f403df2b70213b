//! Lingering close: a connection's socket, shut for writing when hyper closes it, then
//! read and discarded until the client closes its side (or goes quiet for
//! [`LINGER_QUIET`]; at most [`LINGER_TIME`] and [`LINGER_BYTES`]) before it is closed.
//!
//! The server closes a connection while its client is still sending when it answers a
//! request before reading its body: a body over its limit, refused with a 413 after the
//! limit's worth was read. Closed at once, the socket still holds unread bytes, and the
//! kernel answers those with a reset; a client still uploading then fails on its next
//! write and never reads the answer waiting for it (curl: "Send failure: Broken pipe",
//! with no status). Shut for writing first, the client receives the answer and the end
//! of the stream, stops sending, and closes; what it sent meanwhile is read and dropped,
//! so nothing is reset. Apache and nginx do the same (nginx's `lingering_close`).
//!
//! A client that closed first (every kept-alive client that hangs up) costs one read
//! more, which finds the end of the stream at once; a quiet one (a kept-alive connection
//! the server closes idle at its stop) is closed after [`LINGER_QUIET`]. The idle reaper
//! and eviction ([`crate::serve`]) close at once. Nothing changes on a request's path.

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;

/// The longest a closing connection waits for its client to stop sending.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// The longest it waits for more from a client that has gone quiet (nginx's
/// `lingering_timeout`): a client still uploading sends again well within it; an idle
/// kept-alive connection closed at the server's stop waits this long.
pub const LINGER_QUIET: Duration = Duration::from_millis(250);
/// The most a closing connection reads (and drops) from its client.
pub const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// How long and how much a closing connection lingers.
#[derive(Debug, Clone, Copy)]
struct Limits {
    time: Duration,
    quiet: Duration,
    bytes: usize,
}

/// A lingering close under way.
struct Closing {
    /// When it ends at the latest.
    ends: tokio::time::Instant,
    /// Fires at the end of the current quiet spell (or at `ends`).
    timer: Pin<Box<tokio::time::Sleep>>,
}

/// A client's connection, closed lingering (see the module's documentation).
pub struct Lingering {
    io: TokioIo<TcpStream>,
    /// Set once shut for writing.
    closing: Option<Closing>,
    drained: usize,
    limits: Limits,
}

impl Lingering {
    pub fn new(stream: TcpStream) -> Self {
        Self::with_limits(
            stream,
            Limits {
                time: LINGER_TIME,
                quiet: LINGER_QUIET,
                bytes: LINGER_BYTES,
            },
        )
    }

    fn with_limits(stream: TcpStream, limits: Limits) -> Self {
        Lingering {
            io: TokioIo::new(stream),
            closing: None,
            drained: 0,
            limits,
        }
    }

    /// Reads and drops what the client sends, until it would wait: `Ready` at the
    /// client's end of stream (or an error), or once the most to drop was dropped.
    /// Answers whether anything came.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> (Poll<()>, bool) {
        let mut scratch = [0u8; 8192];
        let mut came = false;
        loop {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match Pin::new(self.io.inner_mut()).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return (Poll::Ready(()), came),
                Poll::Ready(Ok(())) => {
                    came = true;
                    self.drained += buf.filled().len();
                    if self.drained >= self.limits.bytes {
                        return (Poll::Ready(()), came);
                    }
                }
                Poll::Ready(Err(_)) => return (Poll::Ready(()), came),
                Poll::Pending => return (Poll::Pending, came),
            }
        }
    }

    /// Lingers: ready when the client has closed its side, has been quiet for
    /// [`LINGER_QUIET`], or after [`LINGER_TIME`] or [`LINGER_BYTES`].
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (Poll::Pending, came) = self.poll_discard(cx) else {
            return Poll::Ready(());
        };
        let quiet = self.limits.quiet;
        let Some(closing) = self.closing.as_mut() else {
            return Poll::Ready(());
        };
        if came {
            let next = (tokio::time::Instant::now() + quiet).min(closing.ends);
            closing.timer.as_mut().reset(next);
        }
        closing.timer.as_mut().poll(cx)
    }
}

impl Read for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    /// Shuts the socket for writing, then lingers ([`Lingering::poll_linger`]).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.is_none() {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            let now = tokio::time::Instant::now();
            let ends = now + this.limits.time;
            this.closing = Some(Closing {
                ends,
                timer: Box::pin(tokio::time::sleep_until(
                    (now + this.limits.quiet).min(ends),
                )),
            });
        }
        this.poll_linger(cx).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair: (the server's side, lingering with these limits; the client's).
    async fn pair(time: Duration, quiet: Duration, bytes: usize) -> (Lingering, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let limits = Limits { time, quiet, bytes };
        (Lingering::with_limits(server, limits), client)
    }

    /// Writes an answer and closes lingering; answers how long the close took.
    async fn answer_and_close(server: &mut Lingering) -> Duration {
        std::future::poll_fn(|cx| Pin::new(&mut *server).poll_write(cx, b"413 answer"))
            .await
            .unwrap();
        let t = std::time::Instant::now();
        std::future::poll_fn(|cx| Pin::new(&mut *server).poll_shutdown(cx))
            .await
            .unwrap();
        t.elapsed()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_still_sending_reads_the_answer_and_its_end_not_a_reset() {
        let (mut server, mut client) = pair(
            Duration::from_secs(30),
            Duration::from_secs(5),
            LINGER_BYTES,
        )
        .await;
        // The client sends 4 MB nobody reads, closes its side, and reads until the end of
        // the stream.
        let sending = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..64 {
                if client.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = client.shutdown().await;
            let mut got = Vec::new();
            let read = client.read_to_end(&mut got).await;
            (read.map(|_| got), client)
        });
        let took = answer_and_close(&mut server).await;
        let (read, client) = sending.await.unwrap();
        assert_eq!(read.unwrap(), b"413 answer");
        drop(client);
        // Over when the client closed, not at the time limit.
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(server.drained, 4 * 1024 * 1024);
    }

    #[tokio::test]
    async fn a_client_that_sent_and_never_closes_is_let_go_after_a_quiet_spell() {
        let (mut server, mut client) = pair(
            Duration::from_secs(60),
            Duration::from_millis(200),
            LINGER_BYTES,
        )
        .await;
        client.write_all(b"more of a body").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let took = answer_and_close(&mut server).await;
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test]
    async fn a_quiet_client_is_closed_after_the_quiet_spell() {
        let (mut server, mut client) = pair(
            Duration::from_secs(60),
            Duration::from_millis(100),
            LINGER_BYTES,
        )
        .await;
        let took = answer_and_close(&mut server).await;
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(server.drained, 0);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"413 answer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_sends_on_and_on_is_let_go_after_the_bytes() {
        let (mut server, mut client) =
            pair(Duration::from_secs(60), Duration::from_secs(5), 256 * 1024).await;
        let sending = tokio::spawn(async move {
            let chunk = vec![b'x'; 64 * 1024];
            while client.write_all(&chunk).await.is_ok() {}
        });
        let took = answer_and_close(&mut server).await;
        assert!(took < Duration::from_secs(30), "{took:?}");
        assert!(server.drained >= 256 * 1024, "{}", server.drained);
        drop(server);
        sending.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_trickles_on_is_let_go_after_the_time() {
        let (mut server, mut client) = pair(
            Duration::from_millis(600),
            Duration::from_millis(200),
            LINGER_BYTES,
        )
        .await;
        let trickling = tokio::spawn(async move {
            while client.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let took = answer_and_close(&mut server).await;
        assert!(took >= Duration::from_millis(600), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        drop(server);
        trickling.await.unwrap();
    }
}
