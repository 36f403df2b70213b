//! Lambda's provisioned concurrency API as boto3 and the AWS CLI send it:
//! `PutProvisionedConcurrencyConfig`, `GetProvisionedConcurrencyConfig`,
//! `DeleteProvisionedConcurrencyConfig` and `ListProvisionedConcurrencyConfigs`, all on
//! `/2019-09-30/functions/{FunctionName}/provisioned-concurrency`. A put answers 202 at
//! once, `IN_PROGRESS` until the instances are up, as on Lambda. Any access key of the
//! account may read them; only one made with `--manage` may change them, and a
//! function's own key may do neither.

use crate::aws::{authenticate, error, Access};
use crate::request::{parse_function_name, request_id};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use modelfn_control::{ControlError, ProvisionedStatus};
use serde_json::{json, Value};

/// Reading the settings.
const READ: Access<'static> = Access {
    service: "lambda",
    invoke: None,
    manage: false,
};

/// Changing them: a key made with `--manage`.
const CHANGE: Access<'static> = Access {
    service: "lambda",
    invoke: None,
    manage: true,
};

fn body_of(s: &ProvisionedStatus) -> Value {
    let mut v = json!({
        "RequestedProvisionedConcurrentExecutions": s.requested,
        "AvailableProvisionedConcurrentExecutions": s.allocated,
        "AllocatedProvisionedConcurrentExecutions": s.allocated,
        "Status": s.status,
        "LastModified": modelfn_telemetry::time::rfc3339_ms(s.updated_at_ms).replace('Z', "+0000"),
    });
    if let Some(why) = &s.status_reason {
        v["StatusReason"] = json!(why);
    }
    v
}

fn control_error(e: ControlError, request_id: &str) -> Response {
    let (status, code) = match &e {
        ControlError::NotFound(_) | ControlError::Missing(_) => {
            (StatusCode::NOT_FOUND, "ResourceNotFoundException")
        }
        ControlError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException"),
        ControlError::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
        ControlError::InvalidPackage(_)
        | ControlError::InvalidManifest(_)
        | ControlError::TooLarge(_)
        | ControlError::InitFailed(_)
        | ControlError::InvalidRequest(_) => {
            (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
        }
    };
    error(status, code, &e.to_string(), request_id)
}

/// The function and qualifier a request names (`Qualifier`, or `name:qualifier`), and
/// whether it asks for the list (`List=ALL`).
fn target(raw: &str, uri: &Uri) -> (String, Option<String>, bool) {
    let (name, in_name) = parse_function_name(raw);
    let pairs: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let find = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let list = find("List").is_some();
    (name, find("Qualifier").or(in_name), list)
}

/// Checks the request's signature and key, then reads its target; answers the error response otherwise.
async fn admitted(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    raw: &str,
    body: &[u8],
    request_id: &str,
) -> Result<(String, Option<String>, bool), Box<Response>> {
    let access = if method == Method::GET { READ } else { CHANGE };
    authenticate(state, access, method, uri, headers, body, request_id).await?;
    Ok(target(raw, uri))
}

fn need_qualifier(q: Option<String>, request_id: &str) -> Result<String, Box<Response>> {
    q.ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "Qualifier is required: a version or an alias",
            request_id,
        ))
    })
}

/// `PUT …/provisioned-concurrency?Qualifier=Q` with
/// `{"ProvisionedConcurrentExecutions": N}`.
pub async fn put(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: axum::body::Body,
) -> Response {
    let request_id = request_id();
    let body = match crate::body::read(body, state.config.max_invoke_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let code = if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                "RequestTooLargeException"
            } else {
                "InvalidRequestContentException"
            };
            return error(e.status, code, &e.message, &request_id);
        }
    };
    let (name, qualifier, _) =
        match admitted(&state, &method, &uri, &headers, &raw, &body, &request_id).await {
            Ok(t) => t,
            Err(r) => return *r,
        };
    let qualifier = match need_qualifier(qualifier, &request_id) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    let count = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("ProvisionedConcurrentExecutions")?.as_u64());
    let Some(count) = count.and_then(|c| u32::try_from(c).ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "send {\"ProvisionedConcurrentExecutions\": N}",
            &request_id,
        );
    };
    let by = crate::aws::access_key_id(&headers).unwrap_or_default();
    match state
        .control
        .set_provisioned(&name, &qualifier, count, &by, false)
        .await
    {
        Ok(s) => (StatusCode::ACCEPTED, axum::Json(body_of(&s))).into_response(),
        Err(e) => control_error(e, &request_id),
    }
}

/// `GET …/provisioned-concurrency?Qualifier=Q`, or `?List=ALL`.
pub async fn get(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let request_id = request_id();
    let (name, qualifier, list) =
        match admitted(&state, &method, &uri, &headers, &raw, b"", &request_id).await {
            Ok(t) => t,
            Err(r) => return *r,
        };
    if list {
        return match state.control.provisioned(&name).await {
            Ok(all) => {
                let configs: Vec<Value> = all
                    .iter()
                    .map(|s| {
                        let mut v = body_of(s);
                        v["FunctionArn"] =
                            json!(crate::aws_lambda::arn(&format!("{name}:{}", s.qualifier)));
                        v
                    })
                    .collect();
                axum::Json(json!({ "ProvisionedConcurrencyConfigs": configs })).into_response()
            }
            Err(e) => control_error(e, &request_id),
        };
    }
    let qualifier = match need_qualifier(qualifier, &request_id) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    match state.control.provisioned_status(&name, &qualifier).await {
        Ok(s) => axum::Json(body_of(&s)).into_response(),
        Err(ControlError::Missing(m)) => error(
            StatusCode::NOT_FOUND,
            "ProvisionedConcurrencyConfigNotFoundException",
            &m,
            &request_id,
        ),
        Err(e) => control_error(e, &request_id),
    }
}

/// `DELETE …/provisioned-concurrency?Qualifier=Q`
pub async fn delete(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Response {
    let request_id = request_id();
    let (name, qualifier, _) =
        match admitted(&state, &method, &uri, &headers, &raw, b"", &request_id).await {
            Ok(t) => t,
            Err(r) => return *r,
        };
    let qualifier = match need_qualifier(qualifier, &request_id) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    match state.control.delete_provisioned(&name, &qualifier).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => control_error(e, &request_id),
    }
}
