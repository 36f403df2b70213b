//! What every door does first with a request: a request id, the caller's trace, where it
//! came from (door, key, when received and authenticated), and the function a reference
//! names (a name, `name:qualifier`, a partial or a full ARN).

use modelfn_core::Origin;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

/// What the front door knows of the request being served on this task, and what its door
/// learns on the way (who authenticated it, and when).
pub(crate) struct RequestContext {
    id: Arc<str>,
    /// An index into [`crate::http_metrics::DOORS`].
    door: usize,
    received: Instant,
    auth: Cell<Option<(Instant, Instant)>>,
    key: RefCell<Option<Arc<str>>>,
}

impl RequestContext {
    pub(crate) fn new(id: Arc<str>, door: usize) -> Self {
        RequestContext {
            id,
            door,
            received: Instant::now(),
            auth: Cell::new(None),
            key: RefCell::new(None),
        }
    }

    /// The key that authenticated the request, if one did.
    pub(crate) fn key(self) -> Option<Arc<str>> {
        self.key.into_inner()
    }
}

tokio::task_local! {
    /// The request being served on this task.
    static REQUEST: RequestContext;
}

/// Notes that the request was authenticated from `started` to now, by `key` (an access
/// key id, `admin` for the admin token; `None` when no key was asked for).
pub(crate) fn authenticated(started: Instant, key: Option<&str>) {
    let _ = REQUEST.try_with(|r| {
        r.auth.set(Some((started, Instant::now())));
        if let Some(k) = key {
            *r.key.borrow_mut() = Some(Arc::from(k));
        }
    });
}

/// Where the request being served came from, for the invocation it makes.
pub(crate) fn origin() -> Origin {
    REQUEST
        .try_with(|r| Origin {
            door: crate::http_metrics::DOORS
                .get(r.door)
                .copied()
                .unwrap_or("other"),
            alias: None,
            key_id: r.key.borrow().clone(),
            received: Some(r.received),
            auth: r.auth.get(),
        })
        .unwrap_or_default()
}

/// A request id: a version-4 UUID from the thread's CSPRNG (ChaCha, seeded by the OS), so
/// that no caller or function can guess another's. No system call per request.
pub(crate) fn new_request_id() -> Arc<str> {
    let bytes: [u8; 16] = rand::random();
    let mut text = uuid::Uuid::encode_buffer();
    Arc::from(
        &*uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .encode_lower(&mut text),
    )
}

/// The id of the request being served: the one the front door ([`crate::serve`]) gave
/// it, so every door, log line and span of one request shares it; a fresh one outside a
/// request (tests that drive the router directly). Shared, not copied.
pub(crate) fn request_id() -> Arc<str> {
    REQUEST
        .try_with(|r| r.id.clone())
        .unwrap_or_else(|_| new_request_id())
}

/// The trace the caller sent (`traceparent`, or `X-Amzn-Trace-Id`), to pass on to a code
/// function as Lambda does.
pub(crate) fn trace(headers: &axum::http::HeaderMap) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    modelfn_core::invocation::trace_header(get("traceparent"), get("x-amzn-trace-id"))
}

/// Runs `fut` as the request `ctx`, and answers its output with the key that
/// authenticated it.
pub(crate) async fn serve_request<F: std::future::Future>(
    ctx: RequestContext,
    fut: F,
) -> (F::Output, Option<Arc<str>>) {
    let handled = REQUEST.scope(ctx, fut);
    tokio::pin!(handled);
    let out = (&mut handled).await;
    let key = handled.as_mut().take_value().and_then(RequestContext::key);
    (out, key)
}

/// `name`, `name:q`, `123456789012:function:name[:q]`, `arn:aws:lambda:r:a:function:name[:q]`.
pub fn parse_function_name(raw: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = raw.split(':').collect();
    let rest: &[&str] = if parts.len() >= 7 && parts[0] == "arn" {
        &parts[6..]
    } else if parts.len() >= 3 && parts[1] == "function" {
        &parts[2..]
    } else {
        &parts[..]
    };
    let name = rest.first().copied().unwrap_or("").to_string();
    let qualifier = rest.get(1).map(|q| q.to_string());
    (name, qualifier)
}
