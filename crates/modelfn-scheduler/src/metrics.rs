//! Per-version metrics kept where the invocation already is: outcome counters and
//! fixed-bucket latency histograms in atomics on each slot (a few relaxed adds per call,
//! no lock, no map lookup), read whole at scrape time as [`VersionMetrics`].

use crate::pool::{lock, Slot};
use crate::Scheduler;
pub use modelfn_core::Outcome;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (then +Inf): from a model's 0.1 ms
/// to a slow cold start's minute.
pub const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// [`BUCKETS`] in nanoseconds, to place an observation without floating point.
const BUCKETS_NS: [u64; BUCKETS.len()] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// A latency histogram in atomics.
#[derive(Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // The first bound at or above it (le), or +Inf; the count is the buckets' sum.
        let i = BUCKETS_NS.partition_point(|b| *b < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        cumulative(
            &self.buckets,
            &BUCKETS,
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// Upper bounds of the batch-size buckets, in rows (then +Inf).
pub const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// A histogram of batch sizes (rows) in atomics: powers of two.
#[derive(Default)]
pub struct RowsHistogram {
    buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    sum: AtomicU64,
}

impl RowsHistogram {
    pub fn observe(&self, rows: u32) {
        // The first power of two at or above `rows`: bucket 0 is 1 row, bucket 10 is 1024.
        let i = (u32::BITS - rows.saturating_sub(1).leading_zeros()) as usize;
        self.buckets[i.min(BATCH_BUCKETS.len())].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(u64::from(rows), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        cumulative(
            &self.buckets,
            &BATCH_BUCKETS,
            self.sum.load(Ordering::Relaxed) as f64,
        )
    }
}

fn cumulative(buckets: &[AtomicU64], bounds: &[f64], sum: f64) -> HistogramSnapshot {
    let mut count = 0;
    let buckets = buckets
        .iter()
        .zip(bounds.iter().copied().chain([f64::INFINITY]))
        .map(|(n, le)| {
            count += n.load(Ordering::Relaxed);
            (le, count)
        })
        .collect();
    // The +Inf bucket is the count, so the two always agree.
    HistogramSnapshot {
        count,
        sum,
        buckets,
    }
}

/// A histogram as read: cumulative `(upper bound, count)` pairs ending with +Inf, and the
/// sum of what was observed (seconds, or rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    pub count: u64,
    pub sum: f64,
    /// In JSON the last bound is `"+Inf"` (JSON has no infinity).
    #[serde(with = "bounds")]
    pub buckets: Vec<(f64, u64)>,
}

/// Bucket bounds in JSON, `+Inf` as the string Prometheus writes.
mod bounds {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Bound {
        Finite(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(b: &[(f64, u64)], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(Bound, u64)> = b
            .iter()
            .map(|(le, n)| {
                let le = if le.is_finite() {
                    Bound::Finite(*le)
                } else {
                    Bound::Text("+Inf".into())
                };
                (le, *n)
            })
            .collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, u64)>, D::Error> {
        let v: Vec<(Bound, u64)> = Vec::deserialize(d)?;
        v.into_iter()
            .map(|(le, n)| match le {
                Bound::Finite(f) => Ok((f, n)),
                Bound::Text(t) if t == "+Inf" => Ok((f64::INFINITY, n)),
                Bound::Text(t) => Err(serde::de::Error::custom(format!("bucket bound {t:?}"))),
            })
            .collect()
    }
}

/// One version's counters and histograms.
#[derive(Default)]
pub struct SlotMetrics {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    /// Waiting for admission or an instance (cold start excluded).
    pub queue_wait: Histogram,
    /// Instance starts, on cold invocations.
    pub init: Histogram,
    /// In the instance.
    pub run: Histogram,
    /// From arrival to the answer.
    pub total: Histogram,
    /// Rows in the model batch each request ran in (models only).
    pub batch_rows: RowsHistogram,
}

impl SlotMetrics {
    pub fn count(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn outcomes(&self) -> Vec<(Outcome, u64)> {
        Outcome::ALL
            .iter()
            .map(|o| (*o, self.outcomes[*o as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

/// One served version's metrics, read at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMetrics {
    pub function: String,
    pub version: u64,
    /// Whether it is the function's latest.
    pub latest: bool,
    pub memory_mb: u32,
    pub invocations: Vec<(Outcome, u64)>,
    pub cold_starts: u64,
    /// Of the cold starts, those restored from a snap-start template.
    pub restores: u64,
    pub queue_wait: HistogramSnapshot,
    pub init: HistogramSnapshot,
    pub run: HistogramSnapshot,
    pub total: HistogramSnapshot,
    pub batch_rows: HistogramSnapshot,
    /// Invocations admitted and not finished.
    pub concurrent: u64,
    /// Waiting for admission.
    pub queued: u64,
    pub instances_idle: u64,
    pub instances_busy: u64,
    pub instances_starting: u64,
    pub instances_provisioned: u64,
}

fn metrics_of(slot: &Slot, latest: bool) -> VersionMetrics {
    let c = &slot.counters;
    let (idle, busy, starting, provisioned) = {
        let pool = lock(&slot.pool);
        let shared = u64::from(pool.shared.is_some());
        // A model's one instance is busy while a call runs on it.
        let in_flight = c.in_flight.load(Ordering::Relaxed) as u64;
        let (idle, busy) = if slot.is_shared() {
            if in_flight > 0 {
                (0, shared)
            } else {
                (shared, 0)
            }
        } else {
            (pool.idle.len() as u64, pool.busy as u64)
        };
        (
            idle,
            busy,
            pool.starting as u64,
            pool.provisioned_live as u64,
        )
    };
    let m = &slot.metrics;
    VersionMetrics {
        function: slot.spec.manifest.name.to_string(),
        version: slot.spec.version,
        latest,
        memory_mb: slot.spec.manifest.memory_mb,
        invocations: m.outcomes(),
        cold_starts: c.cold_starts.load(Ordering::Relaxed),
        restores: c.restores.load(Ordering::Relaxed),
        queue_wait: m.queue_wait.snapshot(),
        init: m.init.snapshot(),
        run: m.run.snapshot(),
        total: m.total.snapshot(),
        batch_rows: m.batch_rows.snapshot(),
        concurrent: c.in_flight.load(Ordering::Relaxed) as u64,
        queued: c.waiting.load(Ordering::Relaxed) as u64,
        instances_idle: idle,
        instances_busy: busy,
        instances_starting: starting,
        instances_provisioned: provisioned,
    }
}

impl Scheduler {
    /// Every served version's metrics, by function then version.
    pub fn metrics(&self) -> Vec<VersionMetrics> {
        let slots: Vec<(std::sync::Arc<Slot>, bool)> = {
            let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
            map.values()
                .flat_map(|served| {
                    let latest = served.latest.clone();
                    served.versions.values().map(move |s| {
                        let is_latest = latest
                            .as_ref()
                            .is_some_and(|l| std::sync::Arc::ptr_eq(l, s));
                        (s.clone(), is_latest)
                    })
                })
                .collect()
        };
        let mut out: Vec<VersionMetrics> = slots
            .iter()
            .map(|(s, latest)| metrics_of(s, *latest))
            .collect();
        out.sort_by(|a, b| (&a.function, a.version).cmp(&(&b.function, b.version)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nanosecond_bounds_are_the_second_bounds() {
        for (s, ns) in BUCKETS.iter().zip(BUCKETS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
        let h = Histogram::default();
        h.observe(Duration::from_micros(250));
        let s = h.snapshot();
        assert_eq!(s.buckets[0].1, 0);
        assert_eq!(
            s.buckets[1],
            (0.00025, 1),
            "a value on a bound is in its bucket"
        );
    }

    #[test]
    fn batch_sizes_fall_in_powers_of_two() {
        let h = RowsHistogram::default();
        for rows in [1, 2, 3, 64, 65, 5000] {
            h.observe(rows);
        }
        let s = h.snapshot();
        let le = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).map(|b| b.1);
        assert_eq!(le(1.0), Some(1));
        assert_eq!(le(2.0), Some(2));
        assert_eq!(le(4.0), Some(3));
        assert_eq!(le(64.0), Some(4));
        assert_eq!(le(128.0), Some(5));
        assert_eq!(le(1024.0), Some(5));
        assert_eq!(s.count, 6);
        assert_eq!(s.sum, 5135.0);
    }

    #[test]
    fn a_histogram_is_cumulative_and_ends_with_its_count() {
        let h = Histogram::default();
        for ms in [0.05, 0.3, 0.3, 7.0, 120_000.0] {
            h.observe(Duration::from_secs_f64(ms / 1e3));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert_eq!(s.buckets.last().map(|b| b.1), Some(5));
        let le = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).map(|b| b.1);
        assert_eq!(le(0.0001), Some(1));
        assert_eq!(le(0.0005), Some(3));
        assert_eq!(le(0.01), Some(4));
        assert_eq!(le(60.0), Some(4));
        assert!((s.sum - 120.00765).abs() < 1e-6, "{}", s.sum);
    }
}
