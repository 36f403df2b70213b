//! The AWS protocols' common ground: SigV4 authentication against modelfn access keys,
//! and errors in the shape botocore recognises (`x-amzn-ErrorType`, a JSON body with
//! `Type` and `message`, `x-amzn-RequestId`).

use crate::sigv4::{self, SigError};
use crate::AppState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An AWS-style error response.
pub fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let kind = if status.is_server_error() {
        "Service"
    } else {
        "User"
    };
    error_with(
        status,
        code,
        // `__type` for the JSON protocol's clients (SageMaker's control API), the header
        // for REST-JSON's.
        json!({"__type": code, "Type": kind, "message": message}),
        request_id,
    )
}

/// An AWS-style error response with a body of more members.
pub fn error_with(
    status: StatusCode,
    code: &str,
    body: serde_json::Value,
    request_id: &str,
) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(code) {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// What a signed request asks for: the service it is signed for and, for an
/// invocation, the function. A function's own key may only invoke what the function's
/// `[permissions]` grant, and may not read the management API.
pub struct Access<'a> {
    pub service: &'a str,
    pub invoke: Option<&'a str>,
    /// A change to what serves (provisioned concurrency, endpoint weights): only a signed
    /// request with a key made with `--manage`.
    pub manage: bool,
}

/// The access key id a signed request names.
pub fn access_key_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| sigv4::parse_authorization(v).ok())
        .map(|a| a.access_key_id)
}

/// Checks the request's SigV4 signature against the access key it names, and that the
/// key may do what is asked. Answers the error response to send when it is not accepted.
pub async fn authenticate(
    state: &AppState,
    access: Access<'_>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), Box<Response>> {
    let started = std::time::Instant::now();
    check_signature(
        state,
        access.service,
        method,
        uri,
        headers,
        body,
        request_id,
    )
    .await
    .map_err(Box::new)?;
    crate::request::authenticated(started, access_key_id(headers).as_deref());
    if access.manage {
        return may_manage(state, headers, request_id).await;
    }
    let Some(id) = access_key_id(headers) else {
        return Ok(());
    };
    let owner = state.control.key_function(&id).await.map_err(|e| {
        Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &e.to_string(),
            request_id,
        ))
    })?;
    let Some(function) = owner else {
        return Ok(());
    };
    let allowed = match access.invoke {
        Some(target) => state
            .control
            .permissions(&function)
            .await
            .is_ok_and(|p| p.may_invoke(target)),
        None => false,
    };
    if allowed {
        return Ok(());
    }
    let what = access
        .invoke
        .map(|t| format!("invoke {t}"))
        .unwrap_or_else(|| "read the management API".into());
    Err(Box::new(error(
        StatusCode::FORBIDDEN,
        "AccessDeniedException",
        &format!("the access key of function {function} is not allowed to {what} (grant it with [permissions] invoke in its modelfn.toml)"),
        request_id,
    )))
}

/// A change to what serves needs a signed request with a key made with `--manage` (never
/// a function's own key), even where unsigned calls are allowed: it names who made it.
async fn may_manage(
    state: &AppState,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<(), Box<Response>> {
    let Some(id) = access_key_id(headers) else {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "changing what serves needs a request signed with a modelfn access key made with --manage",
            request_id,
        )));
    };
    match state.control.key_may_manage(&id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            &format!("the access key {id} may not change what serves (create one that may with `modelfn keys create NAME --manage`)"),
            request_id,
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &e.to_string(),
            request_id,
        ))),
    }
}

#[allow(clippy::result_large_err)] // the error is the response itself; `authenticate` boxes it
async fn check_signature(
    state: &AppState,
    service: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<(), Response> {
    let deny = |code: &str, msg: &str| Err(error(StatusCode::FORBIDDEN, code, msg, request_id));
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        if state.config.aws_allow_unsigned {
            return Ok(());
        }
        return deny(
            "MissingAuthenticationTokenException",
            "the request is not signed: sign it with AWS Signature V4 using a modelfn access key (modelfn keys create NAME)",
        );
    };
    let auth = match sigv4::parse_authorization(value) {
        Ok(a) => a,
        Err(SigError::Malformed(m)) => return deny("IncompleteSignatureException", &m),
        Err(_) => {
            return deny(
                "IncompleteSignatureException",
                "the Authorization header cannot be read",
            )
        }
    };
    let req = sigv4::Request {
        method: method.as_str(),
        raw_path: uri.path(),
        raw_query: uri.query(),
        headers,
        body,
    };
    let expect = sigv4::Expect {
        service,
        region: &state.config.aws_region,
    };
    if let Err(e) = sigv4::check_request(&req, &auth, &expect) {
        return refuse(e, request_id);
    }
    let secret = match state.control.key_secret(&auth.access_key_id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return deny(
                "UnrecognizedClientException",
                &format!(
                    "the access key id {} is not a modelfn access key",
                    auth.access_key_id
                ),
            )
        }
        Err(e) => {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                &e.to_string(),
                request_id,
            ))
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match sigv4::verify(&req, &auth, &secret, now) {
        Ok(()) => Ok(()),
        Err(e) => refuse(e, request_id),
    }
}

/// The 403 for a refused signature, with AWS's error codes.
#[allow(clippy::result_large_err)]
fn refuse(e: SigError, request_id: &str) -> Result<(), Response> {
    let (code, msg) = match e {
        SigError::Mismatch => (
            "InvalidSignatureException",
            "the request signature does not match: check the secret access key".to_string(),
        ),
        SigError::Skewed => (
            "InvalidSignatureException",
            "Signature expired: X-Amz-Date is more than 15 minutes from the server's time"
                .to_string(),
        ),
        SigError::BodyMismatch => (
            "XAmzContentSHA256Mismatch",
            "the X-Amz-Content-SHA256 header is not the SHA-256 of the body received".to_string(),
        ),
        SigError::Scope(m) => ("InvalidSignatureException", m),
        SigError::Malformed(m) => ("IncompleteSignatureException", m),
        SigError::Missing => (
            "MissingAuthenticationTokenException",
            "the request is not signed".to_string(),
        ),
    };
    Err(error(StatusCode::FORBIDDEN, code, &msg, request_id))
}
