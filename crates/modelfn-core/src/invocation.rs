//! One invocation as the gateway hands it to the scheduler, and what comes back.

use bytes::Bytes;
use std::time::Instant;

/// A request to run a function once.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Unique id, echoed to the caller and written in logs.
    pub request_id: String,
    /// The event: the request body as sent (or built from a query string).
    pub body: Bytes,
    /// The body's media type without parameters, lower-cased (`application/json`, `text/csv`).
    pub content_type: Option<String>,
    /// When the caller stops waiting; set by the scheduler from the function's timeout.
    pub deadline: Option<Instant>,
    /// How a model writes its answer (the front door decides).
    pub format: ResponseFormat,
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
    pub fn new(request_id: impl Into<String>, body: Bytes, content_type: Option<&str>) -> Self {
        Invocation {
            request_id: request_id.into(),
            body,
            content_type: content_type.map(normalize_media_type),
            deadline: None,
            format: ResponseFormat::Native,
        }
    }

    pub fn with_format(mut self, format: ResponseFormat) -> Self {
        self.format = format;
        self
    }
}

/// Lower-cases a `Content-Type` header and drops its parameters (`; charset=utf-8`).
pub fn normalize_media_type(raw: &str) -> String {
    raw.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationOutput {
    pub body: Bytes,
    pub content_type: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_is_normalized() {
        assert_eq!(
            normalize_media_type("Application/JSON; charset=UTF-8"),
            "application/json"
        );
        assert_eq!(normalize_media_type("text/csv"), "text/csv");
    }
}
