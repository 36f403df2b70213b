//! The AWS Lambda API as boto3 and the AWS CLI send it (`rest-json`, SigV4 with a modelfn
//! access key): `Invoke`, `GetFunction`, `ListFunctions`.
//!
//! Function names resolve from a name, `name:qualifier`, a partial ARN
//! (`123456789012:function:name`) or a full ARN, percent-encoded or not. `Qualifier` may
//! be `$LATEST`, a version or an alias; `X-Amz-Executed-Version` names the version that
//! ran. Provisioned concurrency is in `aws_provisioned`.
//! `X-Amz-Invocation-Type`: `RequestResponse`, `Event` (run in the background: 202, no
//! retries or dead letters yet), `DryRun` (204). `X-Amz-Log-Type: Tail` answers the last
//! 4 KB of the invocation's log in `X-Amz-Log-Result`. A function error is HTTP 200 with
//! `X-Amz-Function-Error: Unhandled`, as on Lambda; API errors carry `x-amzn-ErrorType`.

use crate::aws::{authenticate, error, error_with, Access};
use crate::request::{parse_function_name, request_id};

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use modelfn_control::FunctionInfo;
use modelfn_core::{Invocation, InvokeError};
use serde_json::{json, Value};

/// What the management calls (GetFunction, ListFunctions) ask of a signed request.
const MANAGE: Access<'static> = Access {
    service: "lambda",
    invoke: None,
    manage: false,
};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

pub(crate) fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

fn configuration(f: &FunctionInfo) -> Value {
    let digest = hex::decode(&f.code_sha256).unwrap_or_default();
    let last_modified = modelfn_telemetry::time::rfc3339_ms(f.updated_at_ms).replace('Z', "+0000");
    json!({
        "FunctionName": f.name,
        "FunctionArn": arn(&f.name),
        "Runtime": f.runtime,
        "Handler": f.handler,
        "Description": f.description,
        "Timeout": f.timeout_ms.div_ceil(1000),
        "MemorySize": f.memory_mb,
        "CodeSize": f.code_size,
        "CodeSha256": base64::engine::general_purpose::STANDARD.encode(digest),
        "LastModified": last_modified,
        "Version": "$LATEST",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Layers": f.layers.iter().map(|l| json!({"Arn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{}:{}", l.name, l.version), "CodeSize": l.unpacked_size})).collect::<Vec<_>>(),
    })
}

fn not_found(name: &str, request_id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Function not found: {}", arn(name)),
        request_id,
    )
}

/// `GET /2015-03-31/functions/{FunctionName}`
pub async fn get_function(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let request_id = request_id();
    if let Err(resp) = authenticate(&state, MANAGE, &method, &uri, &headers, b"", &request_id).await
    {
        return *resp;
    }
    let (name, _) = parse_function_name(&raw);
    match state.control.describe(&name).await {
        Ok(f) => {
            let code = json!({"RepositoryType": "modelfn", "Location": format!("/v1/functions/{}", f.name)});
            axum::Json(json!({"Configuration": configuration(&f), "Code": code})).into_response()
        }
        Err(modelfn_control::ControlError::NotFound(_)) => not_found(&name, &request_id),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &e.to_string(),
            &request_id,
        ),
    }
}

/// `GET /2015-03-31/functions/`
pub async fn list_functions(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request_id = request_id();
    if let Err(resp) = authenticate(&state, MANAGE, &method, &uri, &headers, b"", &request_id).await
    {
        return *resp;
    }
    match state.control.list().await {
        Ok(fs) => {
            axum::Json(json!({"Functions": fs.iter().map(configuration).collect::<Vec<_>>()}))
                .into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &e.to_string(),
            &request_id,
        ),
    }
}

/// `POST /2015-03-31/functions/{FunctionName}/invocations`
pub async fn invoke(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: axum::body::Body,
) -> Response {
    let request_id = request_id();
    let limit = state.config.max_invoke_body_bytes;
    let body = match crate::body::read(body, limit).await {
        Ok(b) => b,
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                &format!(
                    "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                ),
                &request_id,
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                &e.message,
                &request_id,
            )
        }
    };
    let (name, name_qualifier) = parse_function_name(&raw);
    let access = Access {
        service: "lambda",
        invoke: Some(&name),
        manage: false,
    };
    if let Err(resp) =
        authenticate(&state, access, &method, &uri, &headers, &body, &request_id).await
    {
        return *resp;
    }
    let query_qualifier = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "Qualifier")
                .map(|(_, v)| v)
        });
    let qualifier = match (name_qualifier, query_qualifier) {
        (Some(a), Some(b)) if a != b => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!(
                "the qualifier in the function name ({a}) and the Qualifier parameter ({b}) differ"
            ),
                &request_id,
            )
        }
        (a, b) => a.or(b),
    };
    // Resolved once: the version checked against the qualifier is the version that runs.
    let reference = modelfn_core::FunctionRef::new(name.clone(), qualifier.as_deref());
    let target = match crate::front::resolve_request(&state, &reference, Some(&headers), &body) {
        Ok(t) => t,
        Err((modelfn_scheduler::Unresolved::NoFunction, _)) => {
            return not_found(&name, &request_id)
        }
        Err((_, why)) => {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Function not found: {}: {why}", arn(&reference.to_string())),
                &request_id,
            )
        }
    };
    let version = target.spec().version.to_string();
    if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: the payload is not valid JSON",
            &request_id,
        );
    }
    let body = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let inv = Invocation::new(request_id.clone(), body, Some("application/json"))
        .with_trace(crate::request::trace(&headers));
    match invocation_type {
        "RequestResponse" => {}
        "DryRun" => {
            return with_ids(
                StatusCode::NO_CONTENT.into_response(),
                &request_id,
                Some(&version),
            )
        }
        "Event" => {
            let mut inv = inv;
            inv.origin = crate::request::origin();
            let qualifier = reference.qualifier.to_string();
            match state
                .events
                .submit(
                    &reference.name,
                    &qualifier,
                    inv,
                    None,
                    &crate::events::config_of(&state.scheduler, &reference.name),
                )
                .await
            {
                Ok(()) => {}
                Err(crate::events::Refused::TooLarge(limit)) => {
                    return error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestTooLargeException",
                        &format!(
                        "Request must be smaller than {limit} bytes for the Event invocation type"
                    ),
                        &request_id,
                    )
                }
                Err(crate::events::Refused::Full { waiting, limit_mb }) => {
                    return error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TooManyRequestsException",
                        &format!("the function's asynchronous queue holds {waiting} bytes of events, at its [async] max_queued_mb = {limit_mb}"),
                        &request_id,
                    )
                }
                Err(crate::events::Refused::Storage(why)) => {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceException",
                        &format!("the event could not be stored: {why}"),
                        &request_id,
                    )
                }
            }
            return with_ids(
                StatusCode::ACCEPTED.into_response(),
                &request_id,
                Some(&version),
            );
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("X-Amz-Invocation-Type {other:?} is not RequestResponse, Event or DryRun"),
                &request_id,
            )
        }
    }
    let tail = headers.get("x-amz-log-type").and_then(|v| v.to_str().ok()) == Some("Tail");
    let t0 = std::time::Instant::now();
    let mut ran = None;
    let mut resp = match crate::front::invoke(&state, &target, inv).await {
        Ok((output, report)) => {
            ran = Some(report.clone());
            let mut r = (StatusCode::OK, output.body).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static(output.content_type),
            );
            if let Ok(v) = HeaderValue::from_str(&report.version.to_string()) {
                r.headers_mut().insert("x-amz-executed-version", v);
            }
            r
        }
        Err(e) => match function_error(&e) {
            Some(fe) => {
                let mut r = (StatusCode::OK, axum::Json(fe)).into_response();
                r.headers_mut().insert(
                    "x-amz-function-error",
                    HeaderValue::from_static("Unhandled"),
                );
                if let Ok(v) = HeaderValue::from_str(&version) {
                    r.headers_mut().insert("x-amz-executed-version", v);
                }
                r
            }
            None => return api_error(e, &name, &request_id),
        },
    };
    if tail {
        let lines = state.logs.query(
            &name,
            &modelfn_telemetry::LogQuery {
                request_id: Some(request_id.to_string()),
                ..Default::default()
            },
        );
        let mut text: String = lines.iter().map(|l| format!("{}\n", l.message)).collect();
        let spec = target.spec();
        if spec.manifest.runtime == modelfn_core::RuntimeKind::Onnx {
            // A model writes no lines of its own: Lambda's, made from what the call did.
            text = model_tail(&request_id, spec, ran.as_ref(), t0.elapsed());
        }
        let start = text.len().saturating_sub(4096);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[start..]);
        if let Ok(v) = HeaderValue::from_str(&b64) {
            resp.headers_mut().insert("x-amz-log-result", v);
        }
    }
    with_ids(resp, &request_id, None)
}

/// START, END and REPORT of a model's invocation, as Lambda writes them for a function.
fn model_tail(
    request_id: &str,
    spec: &modelfn_core::FunctionSpec,
    ran: Option<&modelfn_core::InvocationReport>,
    elapsed: std::time::Duration,
) -> String {
    let report = modelfn_telemetry::lambda_lines::report_line(
        request_id,
        ran.map_or(elapsed, |r| r.duration),
        spec.manifest.memory_mb,
        None,
        ran.and_then(|r| r.init_duration),
        false,
    );
    format!(
        "START RequestId: {request_id} Version: {}\nEND RequestId: {request_id}\n{report}\n",
        spec.version
    )
}

fn with_ids(mut resp: Response, request_id: &str, version: Option<&str>) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        resp.headers_mut().insert("x-amz-executed-version", v);
    }
    resp
}

/// The function's own failures, as Lambda reports them (a model refusing its input
/// counts: the function raised).
fn function_error(e: &InvokeError) -> Option<modelfn_core::FunctionError> {
    match e {
        InvokeError::InvalidInput(m) => {
            Some(modelfn_core::FunctionError::new("InvalidInput", m.clone()))
        }
        InvokeError::UnsupportedMediaType { .. } => Some(modelfn_core::FunctionError::new(
            "UnsupportedMediaType",
            e.to_string(),
        )),
        InvokeError::FunctionNotFound(_)
        | InvokeError::Throttled { .. }
        | InvokeError::Timeout(_)
        | InvokeError::InitFailed(_)
        | InvokeError::Function(_)
        | InvokeError::Unavailable(_)
        | InvokeError::Internal(_) => e.function_error(),
    }
}

/// Errors of the platform or the caller, as Lambda's API reports them.
fn api_error(e: InvokeError, name: &str, request_id: &str) -> Response {
    match e {
        InvokeError::FunctionNotFound(_) => not_found(name, request_id),
        InvokeError::Throttled {
            message,
            retry_after,
        } => {
            let body = json!({"Type": "User", "message": message, "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"});
            let mut r = error_with(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                body,
                request_id,
            );
            r.headers_mut().insert(
                "retry-after",
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            r
        }
        InvokeError::Unavailable(m) => error(
            StatusCode::BAD_GATEWAY,
            "ResourceNotReadyException",
            &m,
            request_id,
        ),
        // The function's own failures are answered before this (function_error).
        other @ (InvokeError::Internal(_)
        | InvokeError::InvalidInput(_)
        | InvokeError::UnsupportedMediaType { .. }
        | InvokeError::Timeout(_)
        | InvokeError::InitFailed(_)
        | InvokeError::Function(_)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &other.to_string(),
            request_id,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_arns() {
        assert_eq!(parse_function_name("iris"), ("iris".into(), None));
        assert_eq!(
            parse_function_name("iris:3"),
            ("iris".into(), Some("3".into()))
        );
        assert_eq!(
            parse_function_name("123456789012:function:iris"),
            ("iris".into(), None)
        );
        assert_eq!(
            parse_function_name("arn:aws:lambda:us-east-1:123456789012:function:iris:$LATEST"),
            ("iris".into(), Some("$LATEST".into()))
        );
    }
}
