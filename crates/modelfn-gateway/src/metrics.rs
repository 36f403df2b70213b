//! `GET /metrics`: Prometheus metrics, behind the admin token or the metrics token. A
//! `prometheus-client` collector reads the scheduler's per-version counters and
//! histograms at scrape time ([`modelfn_scheduler::metrics`]), so an invocation pays a few
//! relaxed atomic adds and nothing else. The names are documented in `docs/metrics.md`.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use modelfn_scheduler::metrics::{HistogramSnapshot, VersionMetrics};
use modelfn_scheduler::Scheduler;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::sync::Arc;

/// Reads the scheduler at every scrape.
struct SchedulerCollector(Arc<Scheduler>);

impl std::fmt::Debug for SchedulerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchedulerCollector")
    }
}

type Labels = Vec<(&'static str, String)>;

/// Which histogram of a version a family shows.
type Pick = fn(&VersionMetrics) -> &HistogramSnapshot;

fn version_labels(v: &VersionMetrics) -> Labels {
    vec![
        ("function", v.function.clone()),
        ("version", v.version.to_string()),
    ]
}

/// One family: `rows` gives each series' extra labels and value.
fn family<T>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    all: &[VersionMetrics],
    rows: impl Fn(&VersionMetrics) -> Vec<(Labels, T)>,
    write: impl Fn(&mut MetricEncoder<'_>, &T) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for v in all {
        for (extra, value) in rows(v) {
            let mut labels = version_labels(v);
            labels.extend(extra);
            let mut series = metric.encode_family(&labels)?;
            write(&mut series, &value)?;
        }
    }
    Ok(())
}

pub(crate) fn counter(m: &mut MetricEncoder<'_>, v: &u64) -> Result<(), Error> {
    m.encode_counter::<NoLabelSet, u64, u64>(v, None)
}

pub(crate) fn gauge(m: &mut MetricEncoder<'_>, v: &u64) -> Result<(), Error> {
    m.encode_gauge(v)
}

/// The encoder adds the buckets up itself: it is given each bucket's own count, and the
/// last bound as `f64::MAX` (which it writes as `+Inf`).
fn histogram(m: &mut MetricEncoder<'_>, h: &HistogramSnapshot) -> Result<(), Error> {
    let mut below = 0;
    let own: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|(le, cumulative)| {
            let n = cumulative.saturating_sub(below);
            below = *cumulative;
            (if le.is_finite() { *le } else { f64::MAX }, n)
        })
        .collect();
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &own, None)
}

impl Collector for SchedulerCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), Error> {
        let all = self.0.metrics();
        let e = &mut e;
        family(
            e,
            "modelfn_function_invocations",
            "Invocations by outcome: success, function_error, timeout, throttled, bad_input, init_error, platform_error.",
            MetricType::Counter,
            &all,
            |v| {
                v.invocations
                    .iter()
                    .map(|(o, n)| (vec![("outcome", o.as_str().to_string())], *n))
                    .collect()
            },
            counter,
        )?;
        family(
            e,
            "modelfn_function_cold_starts",
            "Invocations that started an instance.",
            MetricType::Counter,
            &all,
            |v| vec![(vec![], v.cold_starts)],
            counter,
        )?;
        family(
            e,
            "modelfn_function_restores",
            "Cold starts that restored an instance from its version's snap-start template.",
            MetricType::Counter,
            &all,
            |v| vec![(vec![], v.restores)],
            counter,
        )?;
        let histograms: [(&str, &str, Pick); 4] = [
            (
                "modelfn_function_queue_wait_seconds",
                "Time waiting for admission or a free instance (an instance start excluded).",
                |v| &v.queue_wait,
            ),
            (
                "modelfn_function_init_seconds",
                "Instance starts, on cold invocations.",
                |v| &v.init,
            ),
            (
                "modelfn_function_run_seconds",
                "Time in the instance.",
                |v| &v.run,
            ),
            (
                "modelfn_function_duration_seconds",
                "From arrival to the answer, for invocations that ran.",
                |v| &v.total,
            ),
        ];
        for (name, help, pick) in histograms {
            family(
                e,
                name,
                help,
                MetricType::Histogram,
                &all,
                |v| vec![(vec![], pick(v).clone())],
                histogram,
            )?;
        }
        family(
            e,
            "modelfn_model_batch_rows",
            "Rows in the model batch each request ran in (models only).",
            MetricType::Histogram,
            &all,
            |v| {
                (v.batch_rows.count > 0)
                    .then(|| (vec![], v.batch_rows.clone()))
                    .into_iter()
                    .collect()
            },
            histogram,
        )?;
        family(
            e,
            "modelfn_function_concurrent_executions",
            "Invocations admitted and not finished.",
            MetricType::Gauge,
            &all,
            |v| vec![(vec![], v.concurrent)],
            gauge,
        )?;
        family(
            e,
            "modelfn_function_queued_invocations",
            "Invocations waiting for admission (the queue's depth).",
            MetricType::Gauge,
            &all,
            |v| vec![(vec![], v.queued)],
            gauge,
        )?;
        family(
            e,
            "modelfn_function_instances",
            "Live instances by state: idle (warm), busy, starting.",
            MetricType::Gauge,
            &all,
            |v| {
                [
                    ("idle", v.instances_idle),
                    ("busy", v.instances_busy),
                    ("starting", v.instances_starting),
                ]
                .into_iter()
                .map(|(s, n)| (vec![("state", s.to_string())], n))
                .collect()
            },
            gauge,
        )?;
        family(
            e,
            "modelfn_function_provisioned_instances",
            "Provisioned instances up.",
            MetricType::Gauge,
            &all,
            |v| vec![(vec![], v.instances_provisioned)],
            gauge,
        )?;
        {
            let mut m = e.encode_descriptor(
                "modelfn_http_requests",
                "Requests answered, by front door and status class.",
                None,
                MetricType::Counter,
            )?;
            for (door, class, n) in crate::http_metrics::snapshot() {
                let labels = [("door", door), ("class", class)];
                counter(&mut m.encode_family(&labels)?, &n)?;
            }
        }
        for (name, help, label, rows) in [
            (
                "modelfn_http_key_requests",
                "Requests an access key authenticated, by key id and status class.",
                "key",
                crate::http_metrics::key_snapshot(),
            ),
            (
                "modelfn_http_route_requests",
                "Requests of API routes, by route (`api stage METHOD /path`) and status class.",
                "route",
                crate::http_metrics::route_snapshot(),
            ),
        ] {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (what, class, n) in rows {
                let labels = [(label, what.as_str()), ("class", class)];
                counter(&mut m.encode_family(&labels)?, &n)?;
            }
        }
        family(
            e,
            "modelfn_function_latest",
            "1 for each function's latest version, 0 for the others served.",
            MetricType::Gauge,
            &all,
            |v| vec![(vec![], u64::from(v.latest))],
            gauge,
        )?;
        Ok(())
    }
}

/// Counters read at every scrape: `(name, help, value)`.
type CounterRows = Box<dyn Fn() -> Vec<(&'static str, &'static str, u64)> + Send + Sync>;

/// The records' and the tracer's own health: plain counters without labels.
struct Counters(CounterRows);

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counters")
    }
}

impl Collector for Counters {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), Error> {
        for (name, help, value) in (self.0)() {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            counter(&mut m, &value)?;
        }
        Ok(())
    }
}

fn load(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(std::sync::atomic::Ordering::Relaxed)
}

/// The registry a scrape encodes: the scheduler's collector, the records' and the
/// tracer's.
fn registry(state: &AppState) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(SchedulerCollector(state.scheduler.clone())));
    if let Some(records) = &state.records {
        let c = records.counters.clone();
        r.register_collector(Box::new(Counters(Box::new(move || {
            vec![
                (
                    "modelfn_records_written",
                    "Invocation records written.",
                    load(&c.written),
                ),
                (
                    "modelfn_records_dropped",
                    "Invocation records dropped because the writer's queue was full.",
                    load(&c.dropped),
                ),
            ]
        }))));
    }
    if let Some(t) = &state.tracer {
        let c = t.counters.clone();
        r.register_collector(Box::new(Counters(Box::new(move || {
            vec![
                (
                    "modelfn_traces_kept",
                    "Invocations traced (kept in memory, and exported when OTLP is on).",
                    load(&c.kept),
                ),
                (
                    "modelfn_traces_exported_spans",
                    "Spans the OTLP collector accepted.",
                    load(&c.spans_exported),
                ),
                (
                    "modelfn_traces_export_dropped",
                    "Traces not exported because the export queue was full.",
                    load(&c.export_dropped),
                ),
                (
                    "modelfn_traces_export_failures",
                    "OTLP export requests that failed.",
                    load(&c.export_failed),
                ),
            ]
        }))));
    }
    r
}

/// Whether the request carries the admin token or the metrics token.
fn allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(sent) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let admin =
        crate::admin::constant_time_eq(sent.as_bytes(), state.config.admin_token.as_bytes());
    let metrics = state
        .config
        .metrics_token
        .as_deref()
        .is_some_and(|t| crate::admin::constant_time_eq(sent.as_bytes(), t.as_bytes()));
    admin | metrics
}

/// `GET /v1/stats`: every served version's counters and histograms as JSON (what
/// `modelfn top` and other tools read; `/metrics` is the same for Prometheus).
pub async fn stats(State(state): State<AppState>) -> Response {
    axum::Json(serde_json::json!({ "versions": state.scheduler.metrics() })).into_response()
}

/// `GET /metrics`
pub async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !allowed(&state, &headers) {
        return crate::error::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "/metrics needs `Authorization: Bearer` with the admin token or the metrics token (MODELFN_METRICS_TOKEN)",
        )
        .into_response();
    }
    let mut registry = registry(&state);
    // The queue is read here, before encoding (a collector cannot wait on the database).
    match state.events.queue.depths().await {
        Ok(depths) => {
            registry.register_collector(Box::new(crate::events::metrics::AsyncCollector(depths)))
        }
        Err(e) => tracing::warn!(error = %e, "/metrics: could not read the asynchronous queue"),
    }
    registry.register_collector(Box::new(crate::streams::StreamCollector(
        state.streams.status(),
    )));
    let mut text = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        )
            .into_response();
    }
    // Prometheus asks for OpenMetrics; anything else (curl, promtool, older scrapers)
    // gets the classic text format.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (
            text,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            classic_text(&text),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// The OpenMetrics exposition in Prometheus's classic text format: a counter family is
/// named with its `_total` (as its samples are), and `# UNIT` and `# EOF` go.
fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_are_named_with_their_total_in_the_classic_format() {
        let om = "# HELP a_x Xs.\n# TYPE a_x counter\na_x_total{f=\"g\"} 3\n# HELP b Bs.\n# TYPE b gauge\n# UNIT b seconds\nb 1\n# EOF\n";
        assert_eq!(
            super::classic_text(om),
            "# HELP a_x_total Xs.\n# TYPE a_x_total counter\na_x_total{f=\"g\"} 3\n# HELP b Bs.\n# TYPE b gauge\nb 1\n"
        );
    }
}
