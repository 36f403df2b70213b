//! SageMaker endpoints and their production variants. Every ONNX function is an endpoint
//! `NAME` (its latest version, one variant), and each of its aliases an endpoint
//! `NAME:ALIAS` whose production variants are the alias's versions, named by number and
//! weighted as the alias is. The SageMaker control API's calls on them, as boto3's
//! `sagemaker` client sends them (`POST /` with `X-Amz-Target`, `awsJson1_1`):
//! `DescribeEndpoint`, `ListEndpoints` and `UpdateEndpointWeightsAndCapacities`, which
//! moves the alias (recorded in its history under the caller's access key id; only a
//! key made with `--manage` may).

use crate::aws::{authenticate, error_with, Access};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use modelfn_core::FunctionRef;
use modelfn_scheduler::AliasRoute;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Reading endpoints.
const READ: Access<'static> = Access {
    service: "sagemaker",
    invoke: None,
    manage: false,
};

/// Moving an endpoint's weights: a key made with `--manage`.
const CHANGE: Access<'static> = Access {
    service: "sagemaker",
    invoke: None,
    manage: true,
};

/// Most weights one update names.
const MAX_VARIANTS: usize = 10;

fn arn(endpoint: &str) -> String {
    format!(
        "arn:aws:sagemaker:{}:{}:endpoint/{}",
        crate::aws_lambda::REGION,
        crate::aws_lambda::ACCOUNT,
        endpoint.to_ascii_lowercase()
    )
}

/// The alias an endpoint `NAME:ALIAS` names, as served.
fn alias_of(state: &AppState, function: &str, alias: &str) -> Result<AliasRoute, String> {
    state
        .scheduler
        .aliases(function)
        .into_iter()
        .find(|a| a.name == alias)
        .ok_or_else(|| format!("Could not find endpoint \"{function}:{alias}\"."))
}

fn variant_names(a: &AliasRoute) -> String {
    let v: Vec<String> = a.routing.iter().map(|(v, _)| v.to_string()).collect();
    v.join(", ")
}

/// What an `InvokeEndpoint` call runs: the endpoint `NAME` (or a `TargetVariant`: any
/// version or alias), or the alias endpoint `NAME:ALIAS` (by weight, or the variant
/// `TargetVariant` names, which must be one of its versions).
pub(crate) fn endpoint_ref(
    state: &AppState,
    endpoint: &str,
    variant: Option<&str>,
) -> Result<FunctionRef, String> {
    let Some((function, alias)) = endpoint.split_once(':') else {
        return Ok(FunctionRef::new(endpoint, variant));
    };
    let Some(variant) = variant else {
        return Ok(FunctionRef::new(function, Some(alias)));
    };
    let route = alias_of(state, function, alias)?;
    let known = |v: u64| route.routing.iter().any(|(x, _)| *x == v);
    match variant.parse::<u64>().ok().filter(|v| known(*v)) {
        Some(_) => Ok(FunctionRef::new(function, Some(variant))),
        None => Err(format!(
            "TargetVariant {variant} is not a production variant of endpoint {endpoint}: its variants are {}",
            variant_names(&route)
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointRequest {
    endpoint_name: String,
    #[serde(default)]
    desired_weights_and_capacities: Vec<DesiredWeight>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DesiredWeight {
    variant_name: String,
    #[serde(default)]
    desired_weight: Option<f64>,
    #[serde(default)]
    desired_instance_count: Option<u64>,
}

/// An error as `awsJson1_1` clients read it: the code in the body's `__type`.
fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    error_with(
        status,
        code,
        json!({"__type": code, "message": message}),
        request_id,
    )
}

fn validation(message: &str, request_id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        message,
        request_id,
    )
}

/// `POST /` with `X-Amz-Target: SageMaker.<Operation>`.
pub async fn call(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let request_id = crate::request::request_id();
    let body = match crate::body::read(body, state.config.max_invoke_body_bytes).await {
        Ok(b) => b,
        Err(e) => return error(e.status, "ValidationException", &e.message, &request_id),
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let access = if target == "SageMaker.UpdateEndpointWeightsAndCapacities" {
        CHANGE
    } else {
        READ
    };
    if let Err(r) = authenticate(&state, access, &method, &uri, &headers, &body, &request_id).await
    {
        return *r;
    }
    if target == "SageMaker.ListEndpoints" {
        return list(&state, &request_id).await;
    }
    let req: EndpointRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return validation(&format!("the request does not read: {e}"), &request_id),
    };
    match target {
        "SageMaker.DescribeEndpoint" => describe(&state, &req.endpoint_name, &request_id).await,
        "SageMaker.UpdateEndpointWeightsAndCapacities" => {
            let by = crate::aws::access_key_id(&headers).unwrap_or_default();
            update_weights(&state, req, &by, &request_id).await
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("{other:?} is not an operation modelfn serves (DescribeEndpoint, ListEndpoints, UpdateEndpointWeightsAndCapacities)"),
            &request_id,
        ),
    }
}

/// An ONNX function's info, or why the endpoint does not exist.
async fn model_function(
    state: &AppState,
    function: &str,
    endpoint: &str,
) -> Result<modelfn_control::FunctionInfo, String> {
    let missing = || format!("Could not find endpoint \"{endpoint}\".");
    let info = state
        .control
        .describe(function)
        .await
        .map_err(|_| missing())?;
    if info.runtime == modelfn_core::RuntimeKind::Onnx.as_str() {
        Ok(info)
    } else {
        Err(missing())
    }
}

async fn describe(state: &AppState, endpoint: &str, request_id: &str) -> Response {
    let (function, alias) = match endpoint.split_once(':') {
        Some((f, a)) => (f, Some(a)),
        None => (endpoint, None),
    };
    let info = match model_function(state, function, endpoint).await {
        Ok(i) => i,
        Err(m) => return validation(&m, request_id),
    };
    let (routing, modified_ms) = match alias {
        None => (vec![(info.version, 100)], info.updated_at_ms),
        Some(a) => match alias_of(state, function, a) {
            Ok(route) => {
                let moved = state
                    .control
                    .aliases(function)
                    .await
                    .ok()
                    .and_then(|all| all.aliases.into_iter().find(|x| x.name == a))
                    .map_or(info.updated_at_ms, |x| x.updated_at_ms);
                (route.routing, moved)
            }
            Err(m) => return validation(&m, request_id),
        },
    };
    let variants: Vec<Value> = routing
        .iter()
        .map(|(v, w)| {
            let instances = state.scheduler.instances(function, *v);
            json!({
                "VariantName": v.to_string(),
                "CurrentWeight": f64::from(*w),
                "DesiredWeight": f64::from(*w),
                "CurrentInstanceCount": instances,
                "DesiredInstanceCount": instances,
            })
        })
        .collect();
    axum::Json(json!({
        "EndpointName": endpoint,
        "EndpointArn": arn(endpoint),
        "EndpointConfigName": endpoint,
        "ProductionVariants": variants,
        "EndpointStatus": "InService",
        "CreationTime": info.created_at_ms as f64 / 1e3,
        "LastModifiedTime": modified_ms as f64 / 1e3,
    }))
    .into_response()
}

async fn list(state: &AppState, request_id: &str) -> Response {
    let functions = match state.control.list().await {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                &e.to_string(),
                request_id,
            )
        }
    };
    let mut endpoints = Vec::new();
    for f in functions
        .iter()
        .filter(|f| f.runtime == modelfn_core::RuntimeKind::Onnx.as_str())
    {
        let entry = |name: String, modified_ms: i64| {
            json!({
                "EndpointArn": arn(&name),
                "EndpointName": name,
                "EndpointStatus": "InService",
                "CreationTime": f.created_at_ms as f64 / 1e3,
                "LastModifiedTime": modified_ms as f64 / 1e3,
            })
        };
        endpoints.push(entry(f.name.clone(), f.updated_at_ms));
        let aliases = state.control.aliases(&f.name).await.map(|a| a.aliases);
        for a in aliases.unwrap_or_default() {
            endpoints.push(entry(format!("{}:{}", f.name, a.name), a.updated_at_ms));
        }
    }
    axum::Json(json!({ "Endpoints": endpoints })).into_response()
}

/// New weights for some variants of an alias endpoint (the others keep theirs), made
/// whole percentages adding up to 100, then the alias moves as `modelfn alias set` moves
/// it (each version started once, provisioned instances warmed first).
async fn update_weights(
    state: &AppState,
    req: EndpointRequest,
    by: &str,
    request_id: &str,
) -> Response {
    let endpoint = req.endpoint_name.as_str();
    let Some((function, alias)) = endpoint.split_once(':') else {
        return validation(
            &format!("endpoint {endpoint} serves the latest version of {endpoint}; weights are an alias endpoint's ({endpoint}:ALIAS, made with `modelfn alias set`)"),
            request_id,
        );
    };
    if let Err(m) = model_function(state, function, endpoint).await {
        return validation(&m, request_id);
    }
    let current = match state.control.aliases(function).await {
        Ok(all) => all.aliases.into_iter().find(|a| a.name == alias),
        Err(e) => return validation(&e.to_string(), request_id),
    };
    let Some(current) = current else {
        return validation(
            &format!("Could not find endpoint \"{endpoint}\"."),
            request_id,
        );
    };
    if req.desired_weights_and_capacities.is_empty()
        || req.desired_weights_and_capacities.len() > MAX_VARIANTS
    {
        return validation(
            &format!("DesiredWeightsAndCapacities names 1 to {MAX_VARIANTS} variants"),
            request_id,
        );
    }
    let mut weights: BTreeMap<u64, f64> = current
        .routing
        .iter()
        .map(|(v, w)| (*v, f64::from(*w)))
        .collect();
    for d in &req.desired_weights_and_capacities {
        let named = d.variant_name.parse::<u64>().ok();
        let version = match named.filter(|v| weights.contains_key(v)) {
            Some(v) => v,
            None => {
                return validation(
                    &format!(
                    "{} is not a production variant of endpoint {endpoint}: its variants are {}",
                    d.variant_name,
                    weights
                        .keys()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                    request_id,
                )
            }
        };
        if d.desired_instance_count.is_some() {
            return validation("DesiredInstanceCount is not set per variant here: modelfn starts instances as calls need them (set provisioned concurrency on the alias to keep some started)", request_id);
        }
        match d.desired_weight {
            Some(w) if w.is_finite() && w >= 0.0 => {
                weights.insert(version, w);
            }
            Some(w) => {
                return validation(&format!("DesiredWeight {w} must be 0 or more"), request_id)
            }
            None => {}
        }
    }
    let total: f64 = weights.values().sum();
    if total <= 0.0 {
        return validation("the variants' weights add up to 0", request_id);
    }
    // Relative weights become whole percentages by the largest remainder.
    let scaled: Vec<(u64, u32)> = weights
        .iter()
        .map(|(v, w)| (*v, (w / total * 1e6).round() as u32))
        .collect();
    let routing: BTreeMap<String, u32> = modelfn_control::provisioned::split(100, &scaled)
        .into_iter()
        .map(|(v, w)| (v.to_string(), w))
        .collect();
    let spec = modelfn_control::AliasSpec {
        routing,
        sticky: current.sticky,
        shadow: current.shadow,
        description: current.description,
    };
    match state.control.set_alias(function, alias, spec, by).await {
        Ok(_) => axum::Json(json!({ "EndpointArn": arn(endpoint) })).into_response(),
        Err(e @ modelfn_control::ControlError::Storage(_)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            &e.to_string(),
            request_id,
        ),
        Err(e) => validation(&e.to_string(), request_id),
    }
}
