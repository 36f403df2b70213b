//! Stream sources as the API shows them: `GET /v1/streams` (every shard of every running
//! mapping: records, errors, dead letters, lag, iterator age, connection) and the same on
//! `/metrics` (`docs/metrics.md`).

use crate::metrics::counter;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use modelfn_streams::ShardStatus;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use serde_json::{json, Value};
use std::fmt::Error;

/// `GET /v1/streams`
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "shards": state.streams.status() }))
}

/// Every shard, read for this scrape.
#[derive(Debug)]
pub(crate) struct StreamCollector(pub(crate) Vec<ShardStatus>);

impl Collector for StreamCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), Error> {
        type Read = fn(&ShardStatus) -> f64;
        let families: [(&str, &str, MetricType, Read); 6] = [
            ("modelfn_stream_records", "Stream records processed (in batches that succeeded), per shard.", MetricType::Counter, |s| s.records as f64),
            ("modelfn_stream_errors", "Stream batches whose invocation failed (before a retry, a split or the dead-letter store), per shard.", MetricType::Counter, |s| s.errors as f64),
            ("modelfn_stream_dead_records", "Stream records put in the dead-letter store, per shard.", MetricType::Counter, |s| s.dead as f64),
            ("modelfn_stream_lag_records", "Stream records not yet processed (never read, or read and not acknowledged), per shard.", MetricType::Gauge, |s| s.lag as f64),
            ("modelfn_stream_iterator_age_seconds", "Age of the first record of the last batch read, when it was read (0 when caught up), per shard.", MetricType::Gauge, |s| s.iterator_age_ms as f64 / 1000.0),
            ("modelfn_stream_connected", "1 while the shard's worker is connected to its broker.", MetricType::Gauge, |s| f64::from(u8::from(s.connected))),
        ];
        for (name, help, kind, read) in families {
            let counted = matches!(kind, MetricType::Counter);
            let mut m = e.encode_descriptor(name, help, None, kind)?;
            for s in &self.0 {
                let labels = [
                    ("function", s.function.as_str()),
                    ("shard", s.shard.as_str()),
                ];
                let mut f = m.encode_family(&labels)?;
                if counted {
                    counter(&mut f, &(read(s) as u64))?;
                } else {
                    f.encode_gauge(&read(s))?;
                }
            }
        }
        Ok(())
    }
}
