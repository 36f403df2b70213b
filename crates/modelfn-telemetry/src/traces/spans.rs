//! An invocation's spans, built from its [`Timeline`]: the root (the whole invocation,
//! from the door to the answer) and its children: authenticate, route (reading the request
//! and resolving the version), queue (admission and waiting for an instance), instance
//! start on a cold start (with model load for a model), run, and the model batch inside
//! the run. Also the JSON form the admin API and the dashboard read.

use super::Timeline;
use modelfn_core::trace::{hex, span};
use modelfn_core::{Outcome, PoolKind};
use serde::{Deserialize, Serialize};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attr {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// One span, before it is written out.
pub(crate) struct SpanParts {
    pub(crate) number: u64,
    pub(crate) parent: Option<u64>,
    pub(crate) name: String,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) attrs: Vec<(&'static str, Attr)>,
}

/// The spans of `t`, root first.
pub(crate) fn spans(t: &Timeline) -> Vec<SpanParts> {
    let mut out = Vec::with_capacity(8);
    let mut child = |number: u64, parent: u64, name: &str, start: Instant, end: Instant| {
        out.push(SpanParts {
            number,
            parent: Some(parent),
            name: name.to_string(),
            start,
            end: end.max(start),
            attrs: Vec::new(),
        });
    };
    let mut route_from = t.received;
    if let Some((a, b)) = t.auth {
        child(span::AUTHENTICATE, span::ROOT, "authenticate", a, b);
        route_from = b;
    }
    child(span::ROUTE, span::ROOT, "route", route_from, t.arrived);
    if let Some(r) = &t.ran {
        let started = r.at.checked_sub(r.init.unwrap_or_default()).unwrap_or(r.at);
        child(span::QUEUE, span::ROOT, "queue", t.arrived, started);
        if r.init.is_some() {
            child(
                span::INSTANCE_START,
                span::ROOT,
                "instance start",
                started,
                r.at,
            );
            if t.pool == PoolKind::Shared {
                child(
                    span::MODEL_LOAD,
                    span::INSTANCE_START,
                    "model load",
                    started,
                    r.at,
                );
            }
        }
        child(span::RUN, span::ROOT, "run", r.at, r.at + r.duration);
        if let Some(b) = r.batch {
            child(
                span::BATCH,
                span::RUN,
                "batch",
                b.started,
                b.started + b.took,
            );
            if let Some(s) = out.last_mut() {
                s.attrs
                    .push(("modelfn.batch.rows", Attr::Int(i64::from(b.rows))));
                s.attrs
                    .push(("modelfn.batch.requests", Attr::Int(i64::from(b.requests))));
            }
        }
    }
    let mut attrs = vec![
        (
            "faas.invocation_id",
            Attr::Str(t.request_id.as_str().into()),
        ),
        ("faas.invoked_name", Attr::Str(t.function.as_str().into())),
        ("faas.coldstart", Attr::Bool(t.cold())),
        ("modelfn.version", Attr::Int(t.version as i64)),
        ("modelfn.door", Attr::Str(t.door.into())),
        ("modelfn.outcome", Attr::Str(t.outcome.as_str().into())),
    ];
    if let Some(a) = &t.alias {
        attrs.push(("modelfn.alias", Attr::Str(a.to_string())));
    }
    if let Some(k) = &t.key_id {
        attrs.push(("modelfn.key_id", Attr::Str(k.to_string())));
    }
    if t.outcome != Outcome::Success {
        attrs.push(("error.type", Attr::Str(t.outcome.as_str().into())));
    }
    out.insert(
        0,
        SpanParts {
            number: span::ROOT,
            parent: None,
            name: format!("invoke {}", t.function.as_str()),
            start: t.received,
            end: t.end.max(t.received),
            attrs,
        },
    );
    out
}

/// A kept trace, as the admin API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceView {
    pub trace_id: String,
    pub request_id: String,
    pub function: String,
    pub version: u64,
    pub door: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub cold: bool,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The caller's span, the root's parent, when it sent a trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Unix microseconds.
    pub start_us: i64,
    pub duration_us: u64,
    /// Root first.
    pub spans: Vec<SpanView>,
}

/// One span of a [`TraceView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanView {
    pub span_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    pub name: String,
    /// Unix microseconds.
    pub start_us: i64,
    pub duration_us: u64,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

pub(crate) fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// `t` as the admin API answers it.
pub(crate) fn view(t: &Timeline) -> TraceView {
    let parts = spans(t);
    let caller = t.ids.caller_span.map(|s| hex(&s));
    let spans: Vec<SpanView> = parts
        .iter()
        .map(|s| SpanView {
            span_id: hex(&t.ids.span_id(s.number)),
            parent_span_id: match s.parent {
                Some(p) => Some(hex(&t.ids.span_id(p))),
                None => caller.clone(),
            },
            name: s.name.clone(),
            start_us: unix_us(t.wall(s.start)),
            duration_us: s.end.duration_since(s.start).as_micros() as u64,
            attributes: s
                .attrs
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Attr::Str(s) => serde_json::Value::from(s.as_str()),
                        Attr::Int(i) => serde_json::Value::from(*i),
                        Attr::Bool(b) => serde_json::Value::from(*b),
                    };
                    (k.to_string(), v)
                })
                .collect(),
        })
        .collect();
    let (start_us, duration_us) = spans
        .first()
        .map_or((0, 0), |r| (r.start_us, r.duration_us));
    TraceView {
        trace_id: t.ids.trace_hex(),
        request_id: t.request_id.as_str().into(),
        function: t.function.as_str().into(),
        version: t.version,
        door: t.door.into(),
        alias: t.alias.as_deref().map(str::to_string),
        key_id: t.key_id.as_deref().map(str::to_string),
        cold: t.cold(),
        outcome: t.outcome,
        error: t.error.clone(),
        parent_span_id: caller,
        start_us,
        duration_us,
        spans,
    }
}
