//! Export over OTLP/HTTP (protobuf), through `opentelemetry-otlp`'s span exporter: a
//! thread takes kept traces from a bounded queue, gathers up to [`BATCH`] or what arrives
//! within [`WAIT`], and sends them as one request. A full queue drops and counts, and a
//! collector that fails is counted and logged (at most once a minute), never waited on by
//! a request.

use super::spans::{spans, Attr};
use super::{OtlpConfig, Timeline, TraceCounters};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use opentelemetry_sdk::Resource;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Traces waiting for the exporter at most.
const QUEUE: usize = 4096;
/// Traces in one export request at most.
const BATCH: usize = 512;
/// How long the first trace of a batch waits for others.
const WAIT: Duration = Duration::from_secs(1);

type Started = (SyncSender<Arc<Timeline>>, std::thread::JoinHandle<()>);

/// Starts the export thread; it stops, after sending what is queued, when the sender is
/// dropped.
pub(super) fn start(config: OtlpConfig, counters: Arc<TraceCounters>) -> std::io::Result<Started> {
    let (tx, rx) = sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("modelfn-otlp".into())
        .spawn(move || run(config, rx, &counters))?;
    Ok((tx, handle))
}

fn run(config: OtlpConfig, rx: Receiver<Arc<Timeline>>, counters: &TraceCounters) {
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(Duration::from_secs(10));
    if let Some(e) = &config.endpoint {
        builder = builder.with_endpoint(e.clone());
    }
    let mut exporter = match builder.build() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("OTLP export is off: {e}");
            // Drain, so that the queue never fills and counts as drops forever.
            while rx.recv().is_ok() {
                counters.export_failed.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    exporter.set_resource(
        &Resource::builder()
            .with_service_name(config.service_name.clone())
            .build(),
    );
    let scope = InstrumentationScope::builder("modelfn")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let mut last_warning: Option<Instant> = None;
    let mut open = true;
    while open {
        let mut batch: Vec<Arc<Timeline>> = match rx.recv() {
            Ok(t) => vec![t],
            Err(_) => break,
        };
        let until = Instant::now() + WAIT;
        while batch.len() < BATCH {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(t) => batch.push(t),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let data: Vec<SpanData> = batch.iter().flat_map(|t| span_data(t, &scope)).collect();
        let n = data.len() as u64;
        match futures::executor::block_on(exporter.export(data)) {
            Ok(()) => {
                counters.spans_exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                counters.export_failed.fetch_add(1, Ordering::Relaxed);
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!("OTLP export failed ({n} spans): {e}");
                    last_warning = Some(Instant::now());
                }
            }
        }
    }
}

/// `t`'s spans as the SDK exports them.
fn span_data(t: &Timeline, scope: &InstrumentationScope) -> Vec<SpanData> {
    let trace_id = TraceId::from_bytes(t.ids.trace_id);
    spans(t)
        .into_iter()
        .map(|s| {
            let root = s.parent.is_none();
            let parent = match s.parent {
                Some(p) => SpanId::from_bytes(t.ids.span_id(p)),
                None => t
                    .ids
                    .caller_span
                    .map_or(SpanId::INVALID, SpanId::from_bytes),
            };
            let status = match (&t.error, root) {
                (Some(e), true) => Status::error(e.clone()),
                _ => Status::Unset,
            };
            SpanData {
                span_context: SpanContext::new(
                    trace_id,
                    SpanId::from_bytes(t.ids.span_id(s.number)),
                    TraceFlags::SAMPLED,
                    false,
                    TraceState::default(),
                ),
                parent_span_id: parent,
                parent_span_is_remote: root && t.ids.caller_span.is_some(),
                span_kind: if root {
                    SpanKind::Server
                } else {
                    SpanKind::Internal
                },
                name: Cow::Owned(s.name),
                start_time: t.wall(s.start),
                end_time: t.wall(s.end),
                attributes: s
                    .attrs
                    .into_iter()
                    .map(|(k, v)| match v {
                        Attr::Str(s) => KeyValue::new(k, s),
                        Attr::Int(i) => KeyValue::new(k, i),
                        Attr::Bool(b) => KeyValue::new(k, b),
                    })
                    .collect(),
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status,
                instrumentation_scope: scope.clone(),
            }
        })
        .collect()
}
