//! The asynchronous queue on `/metrics`: events per function by state, the age of the
//! oldest waiting, and those that ran more than once (`docs/metrics.md`).

use crate::metrics::gauge;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::fmt::Error;

/// Each function's asynchronous queue, read for this scrape.
#[derive(Debug)]
pub(crate) struct AsyncCollector(pub(crate) Vec<modelfn_queue::QueueDepth>);

impl Collector for AsyncCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), Error> {
        let mut m = e.encode_descriptor(
            "modelfn_async_events",
            "Asynchronous events by state: queued, running, succeeded (kept 24 hours), dead (the dead-letter store).",
            None,
            MetricType::Gauge,
        )?;
        for d in &self.0 {
            for (state, n) in [
                ("queued", d.queued),
                ("running", d.running),
                ("succeeded", d.succeeded),
                ("dead", d.dead),
            ] {
                let labels = [("function", d.function.as_str()), ("state", state)];
                gauge(&mut m.encode_family(&labels)?, &n)?;
            }
        }
        let mut m = e.encode_descriptor(
            "modelfn_async_oldest_age_seconds",
            "Age of the oldest event waiting or running, per function (0 with none).",
            None,
            MetricType::Gauge,
        )?;
        let now = modelfn_queue::now_ms();
        for d in &self.0 {
            let age = d
                .oldest_ms
                .map_or(0, |t| u64::try_from((now - t) / 1000).unwrap_or(0));
            gauge(
                &mut m.encode_family(&[("function", d.function.as_str())])?,
                &age,
            )?;
        }
        let mut m = e.encode_descriptor(
            "modelfn_async_reran_events",
            "Succeeded events (kept 24 hours) that ran more than once: a retry, or a restart while they ran.",
            None,
            MetricType::Gauge,
        )?;
        for d in &self.0 {
            gauge(
                &mut m.encode_family(&[("function", d.function.as_str())])?,
                &d.reran,
            )?;
        }
        Ok(())
    }
}
