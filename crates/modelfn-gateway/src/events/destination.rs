//! Success and failure destinations: when an event succeeds, or fails for good, and the
//! function's `[async]` table names a destination function, that function is invoked
//! asynchronously with Lambda's destination record (`version`, `timestamp`,
//! `requestContext` with `condition` and `approximateInvokeCount`, `requestPayload`,
//! `responseContext`, `responsePayload`), so that code written for Lambda's destinations
//! reads it unchanged.

use super::AsyncEvents;
use bytes::Bytes;
use modelfn_core::async_config::destination;
use modelfn_core::{AsyncConfig, InvokeError};
use modelfn_queue::{Leased, NewEvent};
use modelfn_scheduler::Scheduler;
use serde_json::{json, Value};

/// How an event ended, for its destination.
pub(super) enum Outcome<'a> {
    /// It ran to this answer on this version.
    Succeeded { version: u64, answer: &'a [u8] },
    /// It failed for good (out of attempts, out of age, or refused).
    Failed {
        error: Option<&'a InvokeError>,
        why: &'a str,
        expired: bool,
    },
}

/// Invokes the destination `config` names for `outcome`, if it names one. The record is
/// stored as an asynchronous event of its own (it is tried, and dead-lettered, as any).
pub(super) async fn deliver(
    events: &AsyncEvents,
    scheduler: &Scheduler,
    config: &AsyncConfig,
    event: &Leased,
    outcome: Outcome<'_>,
) {
    let target = match &outcome {
        Outcome::Succeeded { .. } => &config.on_success,
        Outcome::Failed { .. } => &config.on_failure,
    };
    let Some(target) = target else {
        return;
    };
    let Ok((name, qualifier)) = destination(target) else {
        return;
    };
    let record = record(event, &outcome);
    let body = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
    let dest_config = super::config_of(scheduler, &name);
    let new = NewEvent {
        id: crate::request::new_request_id().to_string(),
        function: name.clone(),
        qualifier,
        payload: body.clone(),
        content_type: Some("application/json".into()),
        trace: event.trace.clone(),
        key_id: None,
        max_attempts: dest_config
            .max_attempts
            .unwrap_or(events.settings.max_attempts),
        max_age: dest_config.max_age.unwrap_or(events.settings.max_age),
    };
    match events.queue.enqueue(new).await {
        Ok(()) => {
            events.waited(&name, body.len() as i64);
            events.wake.notify_one();
        }
        Err(e) => {
            tracing::warn!(function = %event.function, destination = %name, error = %e, "could not store a destination record")
        }
    }
}

/// Lambda's destination record.
fn record(event: &Leased, outcome: &Outcome<'_>) -> Value {
    let payload = |b: &[u8]| {
        serde_json::from_slice::<Value>(b)
            .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(b)))
    };
    let arn = format!(
        "{}:{}",
        crate::aws_lambda::arn(&event.function),
        event.qualifier
    );
    let (condition, response_context, response) = match outcome {
        Outcome::Succeeded { version, answer } => (
            "Success",
            json!({ "statusCode": 200, "executedVersion": version.to_string() }),
            payload(answer),
        ),
        Outcome::Failed {
            error,
            why,
            expired,
        } => {
            let response = match error.and_then(InvokeError::function_error) {
                Some(fe) => serde_json::to_value(fe).unwrap_or(Value::Null),
                None => json!({
                    "errorType": error.map_or("EventFailed", InvokeError::kind),
                    "errorMessage": why,
                }),
            };
            (
                if *expired {
                    "EventAgeExceeded"
                } else {
                    "RetriesExhausted"
                },
                json!({ "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" }),
                response,
            )
        }
    };
    json!({
        "version": "1.0",
        "timestamp": modelfn_telemetry::time::rfc3339_ms(modelfn_queue::now_ms()),
        "requestContext": {
            "requestId": event.id,
            "functionArn": arn,
            "condition": condition,
            "approximateInvokeCount": event.attempt,
        },
        "requestPayload": payload(&event.payload),
        "responseContext": response_context,
        "responsePayload": response,
    })
}
