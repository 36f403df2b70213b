//! What every door does first with a request: a request id, the caller's trace, and the
//! function a reference names (a name, `name:qualifier`, a partial or a full ARN).

tokio::task_local! {
    /// The id the front door gave the request being served on this task.
    static REQUEST_ID: String;
}

/// A request id: a version-4 UUID from the thread's CSPRNG (ChaCha, seeded by the OS), so
/// that no caller or function can guess another's. No system call per request.
pub(crate) fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The id of the request being served: the one the front door ([`crate::serve`]) gave
/// it, so every door, log line and span of one request shares it; a fresh one outside a
/// request (tests that drive the router directly).
pub(crate) fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| new_request_id())
}

/// The trace the caller sent (`traceparent`, or `X-Amzn-Trace-Id`), to pass on to a code
/// function as Lambda does.
pub(crate) fn trace(headers: &axum::http::HeaderMap) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    modelfn_core::invocation::trace_header(get("traceparent"), get("x-amzn-trace-id"))
}

/// Runs `fut` as the request `id`: [`request_id`] answers `id` inside it.
pub(crate) async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
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
