//! One invocation as the gateway hands it to the scheduler, and what comes back.

use crate::observe::{BatchRun, Origin};
use bytes::Bytes;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// A request to run a function once.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Unique id, echoed to the caller and written in logs; shared (not copied) by the
    /// door, the scheduler and the observers of one request.
    pub request_id: Arc<str>,
    /// The event: the request body as sent (or built from a query string).
    pub body: Bytes,
    /// The body's media type without parameters, lower-cased (`application/json`, `text/csv`).
    pub content_type: Option<Cow<'static, str>>,
    /// When the caller stops waiting; set by the scheduler from the function's timeout.
    pub deadline: Option<Instant>,
    /// How a model writes its answer (the front door decides).
    pub format: ResponseFormat,
    /// The caller's trace, as Lambda passes it on (`Root=1-…;Parent=…;Sampled=…`), from a
    /// W3C `traceparent` or an `X-Amzn-Trace-Id` the caller sent; `None`: a new one.
    pub trace: Option<String>,
    /// Who called, through which door (records, metrics and traces say so).
    pub origin: Origin,
}

/// The shape of a model's answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `{"prediction": ..., "probabilities": {...}}` / `{"predictions": [...]}`.
    #[default]
    Native,
    /// SageMaker's built-in algorithms: `{"predictions": [{"score": ..., "predicted_label": ...}]}`.
    SageMaker,
    /// The Open Inference Protocol's tensors: `{"outputs": [{"name", "datatype", "shape", "data"}]}`.
    OpenInference,
}

impl Invocation {
    pub fn new(request_id: impl Into<Arc<str>>, body: Bytes, content_type: Option<&str>) -> Self {
        Invocation {
            request_id: request_id.into(),
            body,
            content_type: content_type.map(media_type),
            deadline: None,
            format: ResponseFormat::Native,
            trace: None,
            origin: Origin::default(),
        }
    }

    pub fn with_trace(mut self, trace: Option<String>) -> Self {
        self.trace = trace;
        self
    }

    pub fn with_format(mut self, format: ResponseFormat) -> Self {
        self.format = format;
        self
    }
}

/// The trace a caller sent, in Lambda's `X-Amzn-Trace-Id` form: a W3C `traceparent`
/// (`00-<32 hex>-<16 hex>-<2 hex>`) becomes `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;
/// Sampled=<0|1>`, as AWS maps one to the other; an `X-Amzn-Trace-Id` that starts with
/// `Root=1-` is kept as sent (printable ASCII, at most 256 bytes). Anything else is none.
pub fn trace_header(traceparent: Option<&str>, amzn_trace_id: Option<&str>) -> Option<String> {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(tp) = traceparent {
        let parts: Vec<&str> = tp.trim().split('-').collect();
        if let [version, trace, parent, flags] = parts[..] {
            let zero = |s: &str| s.bytes().all(|b| b == b'0');
            if hex(version, 2)
                && version != "ff"
                && hex(trace, 32)
                && !zero(trace)
                && hex(parent, 16)
                && !zero(parent)
                && hex(flags, 2)
            {
                let sampled = u8::from_str_radix(flags, 16).unwrap_or(0) & 1;
                let t = trace.to_ascii_lowercase();
                return Some(format!(
                    "Root=1-{}-{};Parent={};Sampled={sampled}",
                    &t[..8],
                    &t[8..],
                    parent.to_ascii_lowercase()
                ));
            }
        }
    }
    amzn_trace_id
        .map(str::trim)
        .filter(|t| t.starts_with("Root=1-") && t.len() <= 256)
        .filter(|t| t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}

/// Lower-cases a `Content-Type` header and drops its parameters (`; charset=utf-8`).
pub fn normalize_media_type(raw: &str) -> String {
    raw.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Media types common enough to be named without a `String` per request.
const KNOWN_MEDIA_TYPES: [&str; 5] = [
    "application/json",
    "text/csv",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
];

/// [`normalize_media_type`], borrowed for a common type (no allocation per request).
pub fn media_type(raw: &str) -> Cow<'static, str> {
    match KNOWN_MEDIA_TYPES.iter().find(|t| media_type_is(raw, t)) {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(normalize_media_type(raw)),
    }
}

/// Whether a `Content-Type` header names the media type `want` (lower-case), ignoring
/// case and parameters, without making a string.
pub fn media_type_is(raw: &str, want: &str) -> bool {
    raw.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(want)
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationOutput {
    pub body: Bytes,
    pub content_type: &'static str,
    /// The batch a model ran it in (`None` for code functions).
    pub batch: Option<BatchRun>,
}

impl InvocationOutput {
    pub fn new(body: Bytes, content_type: &'static str) -> Self {
        InvocationOutput {
            body,
            content_type,
            batch: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_w3c_traceparent_becomes_lambdas_trace_header() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_header(Some(tp), None).as_deref(),
            Some("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_header(Some(bad), None), None, "{bad}");
        }
        let amzn = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
        assert_eq!(trace_header(None, Some(amzn)).as_deref(), Some(amzn));
        assert_eq!(trace_header(None, Some("Root=1-x\ny")), None);
    }

    #[test]
    fn media_type_is_normalized() {
        assert_eq!(
            normalize_media_type("Application/JSON; charset=UTF-8"),
            "application/json"
        );
        assert_eq!(normalize_media_type("text/csv"), "text/csv");
        assert_eq!(
            media_type("Application/JSON; charset=UTF-8"),
            "application/json"
        );
        assert!(matches!(media_type("text/csv"), Cow::Borrowed("text/csv")));
        assert_eq!(media_type(" Image/PNG ; q=1"), "image/png");
        assert!(media_type_is(" Text/CSV ; header=present", "text/csv"));
        assert!(!media_type_is("text/csvx", "text/csv"));
    }
}
