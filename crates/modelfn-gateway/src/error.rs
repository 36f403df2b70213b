//! The one place where errors become HTTP responses.
//!
//! - The client's or the platform's failures: `{"error": {"type": "...", "message": "..."}}`
//!   with a 4xx or 5xx status that says whose fault it is.
//! - The function's own failures (a handler's exception, a crash, a timeout, a failed
//!   init, a model error): as Lambda's Invoke reports them, HTTP 200 with
//!   `x-modelfn-function-error: Unhandled` and Lambda's error JSON as the body
//!   (`{"errorType": ..., "errorMessage": ..., "stackTrace": [...]}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use modelfn_control::ControlError;
use modelfn_core::{FunctionError, InvokeError};
use serde::Serialize;

/// `{"error": {"type": ..., "message": ...}}`, fields in that order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// Set when the function itself failed: answered as Lambda does.
    pub function_error: Option<Box<FunctionError>>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after_secs: None,
            function_error: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        let status = match &e {
            InvokeError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            InvokeError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            InvokeError::FunctionNotFound(_) => StatusCode::NOT_FOUND,
            InvokeError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            InvokeError::Timeout(_) | InvokeError::InitFailed(_) | InvokeError::Function(_) => {
                StatusCode::OK
            }
            InvokeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            InvokeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut err = ApiError::new(status, e.kind(), e.to_string());
        err.function_error = e.function_error().map(Box::new);
        if let InvokeError::Throttled { retry_after, .. } = e {
            err.retry_after_secs = Some(retry_after.as_secs().max(1));
        }
        err
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let (status, kind) = match &e {
            ControlError::InvalidPackage(_) => (StatusCode::BAD_REQUEST, "InvalidPackage"),
            ControlError::InvalidManifest(_) => (StatusCode::BAD_REQUEST, "InvalidManifest"),
            ControlError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PackageTooLarge"),
            ControlError::InitFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "InitError"),
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "FunctionNotFound"),
            ControlError::Missing(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ControlError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            ControlError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "StorageError"),
            ControlError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        };
        let mut err = ApiError::new(status, kind, e.to_string());
        if matches!(e, ControlError::Busy(_)) {
            err.retry_after_secs = Some(1);
        }
        err
    }
}

/// A body read with an explicit `limit` ([`axum::body::to_bytes`]) that failed: over the
/// limit is a 413 naming it; anything else a 400.
pub fn body_error(e: axum::Error, limit: usize) -> ApiError {
    let inner = e.into_inner();
    if inner
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some()
    {
        too_large(limit)
    } else {
        ApiError::bad_request(format!("the request body could not be read: {inner}"))
    }
}

/// A 413 naming the `limit`.
pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestTooLarge",
        format!(
            "the request body is larger than the limit of {limit} bytes ({:.1} MB)",
            limit as f64 / 1_048_576.0
        ),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(fe) = &self.function_error {
            let mut resp = (StatusCode::OK, axum::Json(&**fe)).into_response();
            resp.headers_mut().insert(
                "x-modelfn-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            return resp;
        }
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, kind = self.kind, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: &self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Any path no route matches.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("no route for {}", uri.path()),
    )
}

/// A known path with another method: 405 with a body that says so.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{} does not take {method} (see /openapi.json)", uri.path()),
    )
}

/// API Gateway's and function URLs' own error shape: `{"message": "..."}`.
pub(crate) fn message(status: StatusCode, msg: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, axum::Json(serde_json::json!({ "message": msg }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_database_is_a_503_to_retry_and_a_failed_one_a_500() {
        let busy = ApiError::from(ControlError::Busy("pool timed out".into())).into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let failed = ApiError::from(ControlError::Storage("disk full".into())).into_response();
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(failed.headers().get(header::RETRY_AFTER).is_none());
    }
}
