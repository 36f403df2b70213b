//! Lambda's wording and shapes where a function process meets its caller: how an exit
//! reads, the trace header an event carries, the content types answers come back with.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The trace header an event carries (`Root=1-…;Parent=…;Sampled=…`): the caller's trace,
/// or one made from the request id, with modelfn's run span as the parent, so that what the
/// function traces joins the invocation's trace.
pub(crate) fn trace_header(trace: Option<&str>, request_id: &str) -> String {
    let ids = modelfn_core::trace::TraceIds::of(trace, request_id);
    ids.lambda_header(
        ids.span_id(modelfn_core::trace::span::RUN),
        ids.caller_sampled.unwrap_or(false),
    )
}

/// How the process ended. bubblewrap exits with 128 + N when the function was killed by
/// signal N, so that is reported as the signal, as Lambda does.
pub(crate) fn describe_exit(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(137), _) => "signal: killed".into(),
        (Some(code), _) if (129..=128 + 64).contains(&code) => format!("signal: {}", code - 128),
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".into(),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => "unknown".into(),
    }
}

pub(crate) fn content_type(ct: Option<&str>) -> &'static str {
    match ct
        .map(modelfn_core::invocation::normalize_media_type)
        .as_deref()
    {
        Some("application/octet-stream") | Some("application/unknown") => {
            "application/octet-stream"
        }
        Some("text/plain") => "text/plain; charset=utf-8",
        _ => "application/json",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type(None), "application/json");
        assert_eq!(
            content_type(Some("application/unknown")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(Some("Text/Plain; charset=x")),
            "text/plain; charset=utf-8"
        );
    }
}
