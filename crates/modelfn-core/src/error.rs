//! `InvokeError`: every way an invocation can fail, tagged by whose fault it is.
//!
//! The gateway turns these into HTTP responses in exactly one place.

use std::time::Duration;

/// Why an invocation did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvokeError {
    // --- the client's fault ---
    /// The event does not fit what the function takes.
    #[error("{0}")]
    InvalidInput(String),
    /// The request's content type is not one the function reads.
    #[error("unsupported content type '{content_type}': {supported}")]
    UnsupportedMediaType {
        content_type: String,
        supported: &'static str,
    },
    /// No function by that name.
    #[error("function '{0}' does not exist")]
    FunctionNotFound(String),
    /// Too many requests right now; try again after the given time.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: Duration,
    },

    // --- the function's fault ---
    /// The function ran past its timeout.
    #[error("Task timed out after {:.2} seconds", .0.as_secs_f64())]
    Timeout(Duration),
    /// The function could not start (a model that fails to load, a bad package).
    #[error("{0}")]
    InitFailed(String),
    /// The function ran and failed (a handler's exception, a model that errors on this input).
    #[error("{error_type}: {message}")]
    Function { error_type: String, message: String },

    // --- the platform's fault ---
    /// The server is shutting down or the function is being replaced.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an environment failure in modelfn itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl InvokeError {
    /// A short name of the error kind, as users see it in `{"error": {"type": ...}}`.
    pub fn kind(&self) -> &'static str {
        match self {
            InvokeError::InvalidInput(_) => "InvalidInput",
            InvokeError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            InvokeError::FunctionNotFound(_) => "FunctionNotFound",
            InvokeError::Throttled { .. } => "TooManyRequestsException",
            InvokeError::Timeout(_) => "Timeout",
            InvokeError::InitFailed(_) => "InitError",
            InvokeError::Function { .. } => "FunctionError",
            InvokeError::Unavailable(_) => "ServiceUnavailable",
            InvokeError::Internal(_) => "InternalError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_reads_like_lambda() {
        let e = InvokeError::Timeout(Duration::from_millis(3000));
        assert_eq!(e.to_string(), "Task timed out after 3.00 seconds");
    }
}
