//! `InvokeError`: every way an invocation can fail, tagged by whose fault it is.
//!
//! The gateway turns these into HTTP responses in exactly one place.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A function's own failure, in Lambda's standard error format:
/// `{"errorType": ..., "errorMessage": ..., "stackTrace": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub error_message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack_trace: Vec<String>,
}

impl FunctionError {
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        FunctionError {
            error_type: error_type.into(),
            error_message: error_message.into(),
            stack_trace: Vec::new(),
        }
    }
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.error_type.is_empty() {
            f.write_str(&self.error_message)
        } else {
            write!(f, "{}: {}", self.error_type, self.error_message)
        }
    }
}

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
    /// The function could not start (a model that fails to load, an import that fails).
    #[error("{0}")]
    InitFailed(FunctionError),
    /// The function ran and failed (a handler's exception, a crash, a model that errors on
    /// this input).
    #[error("{0}")]
    Function(FunctionError),

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
            InvokeError::Function(_) => "FunctionError",
            InvokeError::Unavailable(_) => "ServiceUnavailable",
            InvokeError::Internal(_) => "InternalError",
        }
    }
}

/// Who failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller: bad input, an unknown function, or over a limit.
    Client,
    /// The function: it raised, timed out, or did not start.
    Function,
    /// modelfn itself.
    Platform,
}

impl InvokeError {
    /// A failure of the function itself, as Lambda reports it to callers; `None` when the
    /// client or the platform failed instead.
    pub fn function_error(&self) -> Option<FunctionError> {
        match self {
            InvokeError::Function(e) | InvokeError::InitFailed(e) => Some(e.clone()),
            InvokeError::Timeout(_) => {
                Some(FunctionError::new("Sandbox.Timedout", self.to_string()))
            }
            InvokeError::InvalidInput(_)
            | InvokeError::UnsupportedMediaType { .. }
            | InvokeError::FunctionNotFound(_)
            | InvokeError::Throttled { .. }
            | InvokeError::Unavailable(_)
            | InvokeError::Internal(_) => None,
        }
    }

    /// How long a throttled caller should wait before trying again (`Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            InvokeError::Throttled { retry_after, .. } => Some(*retry_after),
            InvokeError::InvalidInput(_)
            | InvokeError::UnsupportedMediaType { .. }
            | InvokeError::FunctionNotFound(_)
            | InvokeError::Timeout(_)
            | InvokeError::InitFailed(_)
            | InvokeError::Function(_)
            | InvokeError::Unavailable(_)
            | InvokeError::Internal(_) => None,
        }
    }

    /// Whose fault the failure is: every protocol renders these three alike (4xx, the
    /// function's error as Lambda reports it, 5xx).
    pub fn fault(&self) -> Fault {
        match self {
            InvokeError::InvalidInput(_)
            | InvokeError::UnsupportedMediaType { .. }
            | InvokeError::FunctionNotFound(_)
            | InvokeError::Throttled { .. } => Fault::Client,
            InvokeError::Timeout(_) | InvokeError::InitFailed(_) | InvokeError::Function(_) => {
                Fault::Function
            }
            InvokeError::Unavailable(_) | InvokeError::Internal(_) => Fault::Platform,
        }
    }

    /// An init failure with a message only (`Runtime.InitError`).
    pub fn init(message: impl Into<String>) -> Self {
        InvokeError::InitFailed(FunctionError::new("Runtime.InitError", message))
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
