//! The Open Inference Protocol (KServe V2, Triton's HTTP API) for ONNX functions, with
//! Triton's binary tensor extension (tritonclient's default), and KServe V1 `:predict`.
//!
//! A model takes one tensor of shape `[N, features]` (or `[features]`, one row), of any
//! numeric datatype, under any input name. The answer is JSON tensors: `label` (INT64,
//! or BYTES for named classes) and `probabilities` (FP32 `[N, C]`), or `value` for a
//! regressor. Errors are `{"error": "..."}` with 400, 404 or 500.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use modelfn_core::{FunctionSpec, Invocation, InvokeError, ResponseFormat, RuntimeKind};
use modelfn_scheduler::Resolved;
use serde::Deserialize;
use serde_json::{json, Value};

fn oip_error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// The ONNX function serving `name` (and `version`, if given); else the 404 answer.
fn model(state: &AppState, name: &str, version: Option<&str>) -> Result<Resolved, Box<Response>> {
    let missing = |m: String| Box::new(oip_error(StatusCode::NOT_FOUND, m));
    let reference = modelfn_core::FunctionRef::new(name, version);
    match crate::front::resolve(state, &reference) {
        Ok(target) if target.spec().manifest.runtime == RuntimeKind::Onnx => Ok(target),
        Ok(_) | Err((modelfn_scheduler::Unresolved::NoFunction, _)) => Err(missing(format!(
            "model '{name}' not found (ONNX functions are served as models)"
        ))),
        Err((_, why)) => Err(missing(why)),
    }
}

pub async fn live() -> Json<Value> {
    Json(json!({ "live": true }))
}

pub async fn ready() -> Json<Value> {
    Json(json!({ "ready": true }))
}

pub async fn server_metadata() -> Json<Value> {
    Json(
        json!({"name": "modelfn", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"]}),
    )
}

fn metadata(spec: &FunctionSpec) -> Value {
    let m = spec.manifest.model.as_ref();
    let features = m.map_or(0, |m| m.inputs.len());
    let classes = m.map_or(0, |m| m.labels.len());
    let named = classes > 0;
    json!({
        "name": spec.manifest.name,
        "versions": [spec.version.to_string()],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, features]}],
        "outputs": [
            {"name": "label", "datatype": if named { "BYTES" } else { "INT64" }, "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, if named { classes as i64 } else { -1 }]}
        ],
        "parameters": {"feature_names": m.map(|m| m.inputs.clone()).unwrap_or_default()}
    })
}

pub async fn model_metadata(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match model(&state, &name, None) {
        Ok(target) => Json(metadata(target.spec())).into_response(),
        Err(r) => *r,
    }
}

pub async fn model_version_metadata(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    match model(&state, &name, Some(&version)) {
        Ok(target) => Json(metadata(target.spec())).into_response(),
        Err(r) => *r,
    }
}

pub async fn model_ready(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match model(&state, &name, None) {
        Ok(_) => Json(json!({"name": name, "ready": true})).into_response(),
        Err(r) => *r,
    }
}

pub async fn model_version_ready(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    match model(&state, &name, Some(&version)) {
        Ok(_) => Json(json!({"name": name, "ready": true})).into_response(),
        Err(r) => *r,
    }
}

#[derive(Debug, Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    inputs: Vec<InputTensor>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, Value>>,
}

fn flatten(v: &Value, out: &mut Vec<f64>) -> Result<(), String> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| flatten(i, out)),
        Value::Number(n) => {
            out.push(n.as_f64().unwrap_or(f64::NAN));
            Ok(())
        }
        Value::Bool(b) => {
            out.push(f64::from(u8::from(*b)));
            Ok(())
        }
        other @ (Value::Null | Value::String(_) | Value::Object(_)) => {
            Err(format!("tensor data must be numbers, got {other}"))
        }
    }
}

/// Little-endian tensor bytes of `datatype` to numbers.
fn from_binary(datatype: &str, bytes: &[u8]) -> Result<Vec<f64>, String> {
    macro_rules! read {
        ($t:ty, $n:expr) => {{
            if !bytes.len().is_multiple_of($n) {
                return Err(format!(
                    "{} bytes are not a whole number of {datatype} elements",
                    bytes.len()
                ));
            }
            bytes
                .chunks_exact($n)
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $n])) as f64)
                .collect()
        }};
    }
    Ok(match datatype {
        "FP32" => read!(f32, 4),
        "FP64" => read!(f64, 8),
        "INT8" => read!(i8, 1),
        "INT16" => read!(i16, 2),
        "INT32" => read!(i32, 4),
        "INT64" => read!(i64, 8),
        "UINT8" | "BOOL" => read!(u8, 1),
        "UINT16" => read!(u16, 2),
        "UINT32" => read!(u32, 4),
        "UINT64" => read!(u64, 8),
        other => return Err(format!("datatype {other} is not supported for model inputs (use FP32, FP64 or an integer type)")),
    })
}

/// The one input tensor as rows of features, in the native API's JSON.
fn rows_of(
    headers: &HeaderMap,
    body: &Bytes,
    features: usize,
) -> Result<(Option<String>, Bytes), String> {
    let header_len = headers
        .get("inference-header-content-length")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or("Inference-Header-Content-Length is not a number")
        })
        .transpose()?;
    let (head, binary) = match header_len {
        Some(n) if n <= body.len() => (&body[..n], &body[n..]),
        Some(n) => {
            return Err(format!(
                "Inference-Header-Content-Length {n} is longer than the body ({} bytes)",
                body.len()
            ))
        }
        None => (&body[..], &[][..]),
    };
    let req: InferRequest = serde_json::from_slice(head)
        .map_err(|e| format!("the inference request is not valid: {e}"))?;
    let [input] = req.inputs.as_slice() else {
        return Err(format!(
            "the model takes one input tensor [N, {features}]; the request has {}",
            req.inputs.len()
        ));
    };
    let values = match (
        &input.data,
        input
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"))
            .and_then(Value::as_u64),
    ) {
        (Some(data), _) => {
            let mut v = Vec::new();
            flatten(data, &mut v)?;
            v
        }
        (None, Some(size)) => {
            let mine = binary.get(..size as usize).ok_or_else(|| {
                format!(
                    "input '{}' declares {size} binary bytes, but {} follow the header",
                    input.name,
                    binary.len()
                )
            })?;
            from_binary(&input.datatype, mine)?
        }
        (None, None) => {
            return Err(format!(
                "input '{}' has neither data nor binary_data_size",
                input.name
            ))
        }
    };
    let count: i64 = input.shape.iter().product();
    if input.shape.iter().any(|d| *d < 0) || count as usize != values.len() {
        return Err(format!(
            "input '{}' has shape {:?} but {} values",
            input.name,
            input.shape,
            values.len()
        ));
    }
    let per_row = match input.shape.as_slice() {
        [f] => *f as usize,
        [_, f] => *f as usize,
        other => {
            return Err(format!(
                "input '{}' must be [N, {features}] or [{features}], got {other:?}",
                input.name
            ))
        }
    };
    if per_row != features {
        return Err(format!(
            "the model takes {features} features per row; input '{}' has {per_row}",
            input.name
        ));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(format!(
            "input '{}' holds {bad}; values must be finite",
            input.name
        ));
    }
    let rows: Vec<&[f64]> = if per_row == 0 {
        Vec::new()
    } else {
        values.chunks(per_row).collect()
    };
    Ok((
        req.id,
        Bytes::from(serde_json::to_vec(&rows).unwrap_or_default()),
    ))
}

async fn run_infer(
    state: AppState,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match crate::body::read(body, state.config.max_invoke_body_bytes).await {
        Ok(b) => b,
        Err(e) => return oip_error(e.status, e.message),
    };
    let target = match model(&state, &name, version.as_deref()) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let features = target
        .spec()
        .manifest
        .model
        .as_ref()
        .map_or(0, |m| m.inputs.len());
    let (id, rows) = match rows_of(&headers, &body, features) {
        Ok(x) => x,
        Err(m) => return oip_error(StatusCode::BAD_REQUEST, m),
    };
    let inv = Invocation::new(crate::request::request_id(), rows, Some("application/json"))
        .with_format(ResponseFormat::OpenInference);
    match crate::front::invoke(&state, &target, inv).await {
        Ok((output, report)) => {
            let mut v: Value =
                serde_json::from_slice(&output.body).unwrap_or(json!({"outputs": []}));
            v["model_name"] = json!(name);
            v["model_version"] = json!(report.version.to_string());
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            Json(v).into_response()
        }
        Err(InvokeError::InvalidInput(m)) => oip_error(StatusCode::BAD_REQUEST, m),
        Err(InvokeError::FunctionNotFound(_)) => {
            oip_error(StatusCode::NOT_FOUND, format!("model '{name}' not found"))
        }
        Err(e @ InvokeError::Throttled { .. }) => {
            oip_error(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        Err(e) => oip_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /v2/models/{name}/infer`
pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    run_infer(state, name, None, headers, body).await
}

/// `POST /v2/models/{name}/versions/{version}/infer`
pub async fn infer_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    run_infer(state, name, Some(version), headers, body).await
}

/// `GET /v1/models`: KServe V1's list.
pub async fn v1_list(State(state): State<AppState>) -> Response {
    match state.control.list().await {
        Ok(fs) => Json(json!({"models": fs.iter().filter(|f| f.runtime == "onnx").map(|f| f.name.clone()).collect::<Vec<_>>()})).into_response(),
        Err(e) => oip_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /v1/models/{name}`: KServe V1's readiness.
pub async fn v1_model(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match model(&state, &name, None) {
        Ok(_) => Json(json!({"name": name, "ready": true})).into_response(),
        Err(r) => *r,
    }
}

/// `POST /v1/models/{name}:predict`: `{"instances": [...]}` → `{"predictions": [...]}`.
pub async fn v1_predict(
    State(state): State<AppState>,
    Path(target): Path<String>,
    body: axum::body::Body,
) -> Response {
    let Some((name, verb)) = target.rsplit_once(':') else {
        return oip_error(
            StatusCode::NOT_FOUND,
            format!("no route for POST /v1/models/{target}: use /v1/models/NAME:predict"),
        );
    };
    if verb != "predict" {
        return oip_error(
            StatusCode::NOT_FOUND,
            format!("'{verb}' is not supported; use :predict"),
        );
    }
    let body = match crate::body::read(body, state.config.max_invoke_body_bytes).await {
        Ok(b) => b,
        Err(e) => return oip_error(e.status, e.message),
    };
    let target = match model(&state, name, None) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let inv = Invocation::new(crate::request::request_id(), body, Some("application/json"));
    match crate::front::invoke(&state, &target, inv).await {
        Ok((output, _)) => {
            // One row answers {"prediction": ...}; V1 always answers a list.
            let v: Value = serde_json::from_slice(&output.body).unwrap_or(Value::Null);
            let v = if v.get("predictions").is_some() {
                v
            } else {
                json!({ "predictions": [v] })
            };
            Json(v).into_response()
        }
        Err(InvokeError::InvalidInput(m)) => oip_error(StatusCode::BAD_REQUEST, m),
        Err(e) => oip_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
