//! The front door's connections, bounded: every client is an attacker.
//!
//! - The listener is opened with the system's `somaxconn` as its backlog (not 128), so a
//!   burst waits in the kernel rather than being reset.
//! - A connection with no request in flight for `header_timeout` is closed: a client has
//!   that long to send a request's headers, the first or the next on a kept-alive
//!   connection, however slowly it dribbles them. (This is counted here, by one reaper
//!   on a 1 s tick over every connection, rather than with hyper's per-request header
//!   timer, which cost 0.8 ms of p99 at 64 connections in A/B runs; see BENCHMARKS.md.)
//! - A connection's task waits on its connection and on one signal (close, or drain),
//!   a oneshot whose poll takes no lock: the task is woken twice per request, and
//!   every wake polls every branch. A wake hyper gives it from inside its own poll is
//!   a poll more, not a trip through the runtime's queue ([`crate::repoll`]).
//! - At most `max_connections` are open (kept below the file-descriptor limit, which
//!   [`raise_nofile`] lifts to its hard maximum at start). When a new client arrives at
//!   the cap, the connection idle the longest (no request in flight: a slow or silent
//!   client, or a keep-alive one) is closed to make room, so idle connections cannot
//!   lock the server out; when none is idle, the newcomer is closed.
//! - A connection the server closes lingers ([`crate::linger`]): shut for writing, and
//!   what the client still sends read and dropped until it closes (or is quiet for
//!   250 ms; at most 5 s), so that an answer given before a body was read (a 413)
//!   reaches a client still uploading.
//! - Shutdown stops accepting, lets requests in flight finish, and cuts whatever is
//!   still open after `shutdown_timeout`.

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};

/// The limits of the front door.
#[derive(Debug, Clone)]
pub struct FrontDoor {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

impl Default for FrontDoor {
    fn default() -> Self {
        FrontDoor {
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The kernel's cap on listen backlogs (`net.core.somaxconn`), 4096 if unreadable.
pub fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Raises the soft limit on open files to the hard limit; answers the soft limit now.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit write and read one struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// A listener with the given backlog.
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// What a connection's task is told to do.
#[derive(Debug, Clone, Copy)]
enum Signal {
    /// Close now (idle too long, or evicted for a newcomer).
    Close,
    /// Finish the request in flight, then close (the server is stopping).
    Drain,
}

/// One open connection, as the cap and the idle reaper see it.
struct Conn {
    in_flight: AtomicUsize,
    /// When the door opened: times here are milliseconds since (copied from the table,
    /// so that a request needs no handle on it).
    epoch: Instant,
    /// Milliseconds since the door opened, at the last request's end (or the accept).
    last_active: AtomicU64,
    /// The connection's task's signal; taken by the first to signal it.
    signal: Mutex<Option<oneshot::Sender<Signal>>>,
}

impl Conn {
    fn signal(&self, s: Signal) {
        let tx = self.signal.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            let _ = tx.send(s);
        }
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

struct Table {
    started: Instant,
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Signalled each time a connection closes.
    closed: Notify,
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Asks the connection idle the longest to close.
    fn evict_idlest(&self) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let idlest = conns
            .values()
            .filter(|c| c.idle())
            .min_by_key(|c| c.last_active.load(Ordering::Relaxed));
        if let Some(c) = idlest {
            c.signal(Signal::Close);
        }
    }

    /// Closes every connection with no request in flight for `timeout`.
    fn reap_idle(&self, timeout: Duration) {
        let now = self.now_ms();
        let limit = timeout.as_millis() as u64;
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for c in conns.values() {
            let idle_ms = now.saturating_sub(c.last_active.load(Ordering::Relaxed));
            if c.idle() && idle_ms >= limit {
                c.signal(Signal::Close);
            }
        }
    }

    /// Tells every connection to finish what it is doing and close.
    fn drain_all(&self) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for c in conns.values() {
            c.signal(Signal::Drain);
        }
    }

    fn open(&self) -> (u64, Arc<Conn>, oneshot::Receiver<Signal>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let c = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            epoch: self.started,
            last_active: AtomicU64::new(self.now_ms()),
            signal: Mutex::new(Some(tx)),
        });
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, c.clone());
        (id, c, rx)
    }

    fn close(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.closed.notify_one();
    }

    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Counts a request as in flight until its response body is dropped.
struct InFlight {
    conn: Arc<Conn>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.conn.epoch.elapsed().as_millis() as u64;
        self.conn.last_active.store(now, Ordering::Relaxed);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`InFlight`] until sent.
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` within `door`'s limits until `shutdown` resolves, then
/// drains for at most `door.shutdown_timeout`. With `native`, a native invoke
/// (`POST /v1/functions/{name}/invoke`) is run on that state directly rather than
/// through the router ([`crate::invoke::native_post_target`]); a door whose router adds
/// to each request (the sandbox's, which names the calling function) passes `None`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    native: Option<crate::AppState>,
    door: FrontDoor,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let table = Arc::new(Table {
        started: Instant::now(),
        next: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
        closed: Notify::new(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    // The idle reaper's tick, polled by the accept loop (no task of its own to outlive
    // this future when a sandbox's door is dropped).
    let mut reap = tokio::time::interval(door.header_timeout.min(Duration::from_secs(1)));
    reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let builder = Arc::new(hyper::server::conn::http1::Builder::new());
    tokio::pin!(shutdown);
    'serving: loop {
        // Room first: at the cap, close the idlest connection and wait for a close.
        while table.len() >= door.max_connections {
            table.evict_idlest();
            tokio::select! {
                _ = &mut shutdown => break 'serving,
                _ = reap.tick() => table.reap_idle(door.header_timeout),
                _ = table.closed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            _ = reap.tick() => {
                table.reap_idle(door.header_timeout);
                continue;
            }
            a = listener.accept() => a,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors or a connection reset while queued: keep serving.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (id, conn, mut signal) = table.open();
        let (table, builder) = (table.clone(), builder.clone());
        // Per connection, so that a request clones nothing shared by every connection
        // (each such clone is an atomic on a cache line both workers write).
        let router = std::cell::RefCell::new(app.clone());
        let native = native.clone().map(Arc::new);
        // Polled again at once when hyper wakes it from inside its own poll, rather than
        // sent to the back of the queue with a sibling worker woken ([`crate::repoll`]).
        tasks.spawn(crate::repoll::Repoll::new(async move {
            let svc_conn = conn;
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                svc_conn.in_flight.fetch_add(1, Ordering::AcqRel);
                let guard = InFlight {
                    conn: svc_conn.clone(),
                };
                let door = crate::http_metrics::door_of(req.uri().path());
                // One id per request, for every door, log line and span of it.
                let id = crate::request::new_request_id();
                let span = tracing::debug_span!("request", id = %id);
                let target = native.as_ref().and_then(|state| {
                    crate::invoke::native_post_target(req.method(), req.uri().path())
                        .map(|name| (state.clone(), name))
                });
                // The invoke's future is boxed: it is kilobytes (every future it awaits, held
                // inline), and hyper moves the service's future into its in-flight slot;
                // unboxed, each request copied some 23 KB (BENCHMARKS.md, "Futures moved").
                let call = match target {
                    Some((state, name)) => futures::future::Either::Left(Box::pin(async move {
                        let answer = crate::invoke::post(&state, name, false, req).await;
                        Ok(axum::response::IntoResponse::into_response(answer))
                    })),
                    None => futures::future::Either::Right(tower::Service::call(
                        &mut *router.borrow_mut(),
                        req,
                    )),
                };
                let handled = crate::request::serve_request(
                    crate::request::RequestContext::new(id, door),
                    tracing::Instrument::instrument(call, span),
                );
                async move {
                    let (resp, key) = handled.await;
                    let resp = resp?;
                    let status = resp.status().as_u16();
                    crate::http_metrics::count(door, status);
                    if let Some(k) = key {
                        crate::http_metrics::count_key(&k, status);
                    }
                    // hyper takes this body type as it is: no second box around the first.
                    Ok::<_, std::convert::Infallible>(resp.map(|inner| Tracked {
                        inner,
                        _guard: guard,
                    }))
                }
            });
            // Closed lingering, so that an answer given before a body was read is not lost
            // to a reset ([`crate::linger`]).
            let connection =
                builder.serve_connection(crate::linger::Lingering::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                biased;
                _ = connection.as_mut() => {}
                s = &mut signal => match s {
                    Ok(Signal::Close) => {}
                    Ok(Signal::Drain) => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.as_mut().await;
                    }
                    // Never sent: the table holds the sender while the connection lives.
                    Err(_) => {
                        let _ = connection.as_mut().await;
                    }
                },
            }
            table.close(id);
        }));
    }
    drop(listener);
    table.drain_all();
    let drained = tokio::time::timeout(door.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = table.len(),
            "shutdown deadline passed: closing the connections still open"
        );
        tasks.abort_all();
    }
    Ok(())
}
