//! Buckets and their triggers. `PUT`, `GET` and `DELETE /v1/buckets/{bucket}/{key}` and
//! `GET /v1/buckets/{bucket}?prefix=` keep objects in the [`store`] (the node's
//! directory, or the cluster's S3 bucket); the admin
//! token may use every bucket, a function (from its sandbox) the buckets its
//! `[permissions] buckets` grants. Once an object is written or deleted, every served
//! function whose `[[objects]]` table matches gets an S3-style event record as an
//! asynchronous event (durable, retried, dead-lettered, with its destinations), stored
//! before the write is answered.

mod s3;
pub mod store;

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use modelfn_core::{FunctionCaller, Invocation, ObjectEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use store::StoreError;

const LIST_LIMIT: usize = 1000;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, kind) = match &e {
            StoreError::BadName(_) | StoreError::Body(_) => {
                (StatusCode::BAD_REQUEST, "InvalidRequest")
            }
            StoreError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "EntityTooLarge"),
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "NoSuchKey"),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            StoreError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
        };
        ApiError::new(status, kind, e.to_string())
    }
}

/// The admin token, unless the call comes from a function's sandbox (whose guard has
/// already checked the bucket against its permissions).
fn admit(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Option<Extension<Arc<FunctionCaller>>>,
) -> Result<(), ApiError> {
    if caller.is_some() {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t)
            if crate::admin::auth::constant_time_eq(
                t.as_bytes(),
                state.config.admin_token.as_bytes(),
            ) =>
        {
            Ok(())
        }
        Some(_) | None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "buckets need `Authorization: Bearer <admin token>` (or, from a function, [permissions] buckets)",
        )),
    }
}

/// `PUT /v1/buckets/{bucket}/{key}`: the body is the object.
pub async fn put(
    State(state): State<AppState>,
    Path((bucket, key)): Path<(String, String)>,
    caller: Option<Extension<Arc<FunctionCaller>>>,
    request: Request,
) -> Result<Response, ApiError> {
    admit(&state, request.headers(), &caller)?;
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = state.objects.max_object_bytes();
    if length.is_some_and(|n| n > limit) {
        return Err(StoreError::TooLarge(limit).into());
    }
    let body = request.into_body().into_data_stream();
    let stored = state.objects.put(&bucket, &key, body).await?;
    fire(
        &state,
        &bucket,
        &key,
        stored.size,
        &stored.etag,
        ObjectEvent::Created,
    )
    .await?;
    Ok(Json(stored).into_response())
}

/// `GET /v1/buckets/{bucket}/{key}`: the object, streamed.
pub async fn get(
    State(state): State<AppState>,
    Path((bucket, key)): Path<(String, String)>,
    headers: HeaderMap,
    caller: Option<Extension<Arc<FunctionCaller>>>,
) -> Result<Response, ApiError> {
    admit(&state, &headers, &caller)?;
    let (body, size) = state.objects.get(&bucket, &key).await?;
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(resp)
}

/// `DELETE /v1/buckets/{bucket}/{key}`: 204, or 404 when there was no such object.
pub async fn delete(
    State(state): State<AppState>,
    Path((bucket, key)): Path<(String, String)>,
    headers: HeaderMap,
    caller: Option<Extension<Arc<FunctionCaller>>>,
) -> Result<Response, ApiError> {
    admit(&state, &headers, &caller)?;
    if !state.objects.delete(&bucket, &key).await? {
        return Err(StoreError::NotFound(format!("{bucket}/{key}")).into());
    }
    fire(&state, &bucket, &key, 0, "", ObjectEvent::Removed).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    prefix: String,
}

/// `GET /v1/buckets/{bucket}?prefix=`: up to 1000 objects in key order.
pub async fn list(
    State(state): State<AppState>,
    Path(bucket): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
    caller: Option<Extension<Arc<FunctionCaller>>>,
) -> Result<Json<Value>, ApiError> {
    admit(&state, &headers, &caller)?;
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (objects, truncated) = state
        .objects
        .list(&bucket, &params.prefix, LIST_LIMIT)
        .await?;
    Ok(Json(
        json!({ "bucket": bucket, "objects": objects, "truncated": truncated }),
    ))
}

/// `GET /v1/buckets` (admin): the buckets.
pub async fn buckets(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "buckets": state.objects.buckets().await? })))
}

/// Queues the event for every served function whose `[[objects]]` matches.
async fn fire(
    state: &AppState,
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
    event: ObjectEvent,
) -> Result<(), ApiError> {
    for name in state.scheduler.names() {
        let Some(spec) = state.scheduler.spec(&name) else {
            continue;
        };
        for t in spec
            .manifest
            .objects
            .iter()
            .filter(|t| t.matches(bucket, key, event))
        {
            let record = s3_record(bucket, key, size, etag, event);
            let body = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
            let inv = Invocation::new(
                crate::request::new_request_id(),
                body,
                Some("application/json"),
            );
            let qualifier = t.qualifier.clone().unwrap_or_else(|| "$LATEST".into());
            let config = crate::events::config_of(&state.scheduler, &name);
            state
                .events
                .submit(&name, &qualifier, inv, None, &config)
                .await
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "TriggerNotQueued",
                        format!("{bucket}/{key} was written, but its event for {name} could not be queued: {e:?}"),
                    )
                })?;
        }
    }
    Ok(())
}

/// S3's event notification, one record.
fn s3_record(bucket: &str, key: &str, size: u64, etag: &str, event: ObjectEvent) -> Value {
    let mut object = json!({ "key": url_key(key), "size": size, "sequencer": format!("{:016X}", modelfn_queue::now_ms()) });
    if event == ObjectEvent::Created {
        object["eTag"] = Value::from(etag);
    }
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": crate::aws_lambda::REGION,
        "eventTime": modelfn_telemetry::time::rfc3339_ms(modelfn_queue::now_ms()),
        "eventName": event.s3_name(),
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": object,
        },
    }]})
}

/// A key as S3 puts it in an event: URL-encoded, spaces as `+`.
fn url_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                char::from(b).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_encoded_as_s3_does() {
        assert_eq!(super::url_key("in/a b+c.csv"), "in/a+b%2Bc.csv");
    }
}
