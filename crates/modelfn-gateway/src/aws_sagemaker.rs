//! SageMaker runtime `InvokeEndpoint` as boto3 sends it (`rest-json`, SigV4 with service
//! `sagemaker`): every ONNX function is an endpoint of the same name, and each of its
//! aliases an endpoint `NAME:ALIAS` whose production variants are the alias's versions
//! (`aws_sagemaker_endpoints`). `text/csv` rows
//! and the JSON shapes of the native API go in; the answer is the shape of SageMaker's
//! built-in algorithms, `{"predictions": [{"score": 0.97, "predicted_label": 1}]}`.
//! A missing endpoint is a 400 `ValidationError`, as on SageMaker; a request the model
//! refuses or a model failure is a 424 `ModelError` carrying the original status.

use crate::aws::{authenticate, error_with, Access};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use modelfn_core::{Invocation, InvokeError, ResponseFormat, RuntimeKind};
use serde_json::json;

fn message(status: StatusCode, code: &str, msg: &str, request_id: &str) -> Response {
    error_with(status, code, json!({ "Message": msg }), request_id)
}

fn model_error(original: u16, msg: &str, request_id: &str) -> Response {
    let kind = if original < 500 {
        "CLIENT_ERROR_FROM_MODEL"
    } else {
        "SERVER_ERROR_FROM_MODEL"
    };
    let text = format!(
        "Received {} error ({original}) from primary with message \"{msg}\"",
        if original < 500 { "client" } else { "server" }
    );
    let body = json!({"ErrorCode": kind, "Message": text, "OriginalMessage": msg, "OriginalStatusCode": original});
    error_with(
        StatusCode::FAILED_DEPENDENCY,
        "ModelError",
        body,
        request_id,
    )
}

/// `POST /endpoints/{EndpointName}/invocations`
pub async fn invoke_endpoint(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Response {
    let request_id = crate::request::request_id();
    let body = match crate::body::read(body, state.config.max_invoke_body_bytes).await {
        Ok(b) => b,
        Err(e) => return message(e.status, "ValidationError", &e.message, &request_id),
    };
    let access = Access {
        service: "sagemaker",
        invoke: Some(&name),
        manage: false,
    };
    if let Err(resp) =
        authenticate(&state, access, &method, &uri, &headers, &body, &request_id).await
    {
        return *resp;
    }
    // An endpoint is a function (its latest) or an alias (`NAME:ALIAS`, its versions the
    // production variants, routed by weight); `TargetVariant` names one.
    let variant = headers
        .get("x-amzn-sagemaker-target-variant")
        .and_then(|v| v.to_str().ok());
    let reference = match crate::aws_sagemaker_endpoints::endpoint_ref(&state, &name, variant) {
        Ok(r) => r,
        Err(why) => {
            return message(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &why,
                &request_id,
            )
        }
    };
    let target = match crate::front::resolve(&state, &reference) {
        Ok(t) => Some(t),
        Err((modelfn_scheduler::Unresolved::NoFunction, _)) => None,
        Err((_, why)) => {
            return message(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &format!("TargetVariant {}: {why}", variant.unwrap_or("")),
                &request_id,
            )
        }
    };
    let Some(target) = target.filter(|t| t.spec().manifest.runtime == RuntimeKind::Onnx) else {
        return message(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            &format!(
                "Endpoint {name} of account {} not found.",
                crate::aws_lambda::ACCOUNT
            ),
            &request_id,
        );
    };
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    let inv = Invocation::new(request_id.clone(), body, content_type)
        .with_format(ResponseFormat::SageMaker);
    let mut resp = match crate::front::invoke(&state, &target, inv).await {
        Ok((output, report)) => {
            let mut r = (StatusCode::OK, output.body).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static(output.content_type),
            );
            // The variant that ran is the version that ran.
            r.headers_mut().insert(
                "x-amzn-invoked-production-variant",
                HeaderValue::from(report.version),
            );
            r
        }
        Err(e @ InvokeError::InvalidInput(_)) => model_error(400, &e.to_string(), &request_id),
        Err(e @ InvokeError::UnsupportedMediaType { .. }) => {
            model_error(415, &e.to_string(), &request_id)
        }
        Err(
            e @ (InvokeError::Function(_) | InvokeError::Timeout(_) | InvokeError::InitFailed(_)),
        ) => model_error(500, &e.to_string(), &request_id),
        Err(InvokeError::FunctionNotFound(_)) => message(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            &format!(
                "Endpoint {name} of account {} not found.",
                crate::aws_lambda::ACCOUNT
            ),
            &request_id,
        ),
        Err(e @ (InvokeError::Throttled { .. } | InvokeError::Unavailable(_))) => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            &e.to_string(),
            &request_id,
        ),
        Err(e @ InvokeError::Internal(_)) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            &e.to_string(),
            &request_id,
        ),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}
