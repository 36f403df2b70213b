//! `modelfn top`: a live view of every function, refreshed each interval from
//! `GET /v1/stats`: invocations and errors per second, p99 duration over the interval,
//! invocations running, cold starts, instances.

use super::Conn;
use crate::table;
use anyhow::{Context, Result};
use clap::Args;
use modelfn_scheduler::metrics::{Outcome, VersionMetrics};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct TopCommand {
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Stop after this many views (default: until interrupted).
    #[arg(long)]
    iterations: Option<u64>,
    #[command(flatten)]
    conn: Conn,
}

/// One function's totals at one moment, over all its served versions.
#[derive(Debug, Clone, Default)]
struct Totals {
    invocations: u64,
    errors: u64,
    throttles: u64,
    cold_starts: u64,
    running: u64,
    instances: u64,
    /// The total-duration histogram: cumulative `(le, count)`.
    buckets: Vec<(f64, u64)>,
}

fn totals(versions: &[VersionMetrics]) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for v in versions {
        let t = out.entry(v.function.clone()).or_default();
        for (o, n) in &v.invocations {
            t.invocations += n;
            match o {
                Outcome::Throttled => t.throttles += n,
                Outcome::FunctionError
                | Outcome::Timeout
                | Outcome::InitError
                | Outcome::PlatformError => t.errors += n,
                Outcome::Success | Outcome::BadInput => {}
            }
        }
        t.cold_starts += v.cold_starts;
        t.running += v.concurrent;
        t.instances += v.instances_idle + v.instances_busy + v.instances_starting;
        if t.buckets.is_empty() {
            t.buckets = v.total.buckets.clone();
        } else {
            for (b, (_, n)) in t.buckets.iter_mut().zip(&v.total.buckets) {
                b.1 += n;
            }
        }
    }
    out
}

/// The upper bound of the bucket holding the 99th percentile of what was added between
/// `before` and `now`, in ms.
fn p99_ms(before: &[(f64, u64)], now: &[(f64, u64)]) -> Option<f64> {
    let delta: Vec<(f64, u64)> = now
        .iter()
        .enumerate()
        .map(|(i, (le, n))| (*le, n - before.get(i).map_or(0, |b| b.1.min(*n))))
        .collect();
    let count = delta.last()?.1;
    if count == 0 {
        return None;
    }
    let want = (count as f64 * 0.99).ceil() as u64;
    delta
        .iter()
        .find(|(_, n)| *n >= want)
        .map(|(le, _)| le * 1e3)
}

impl TopCommand {
    pub async fn run(self) -> Result<()> {
        let client = self.conn.client()?;
        let every = Duration::from_secs_f64(self.interval.clamp(0.1, 3600.0));
        let read = || async {
            let out = client.get_admin("/v1/stats").await?;
            let stats: table::Stats = serde_json::from_value(out).context(
                "the server's stats do not read (is the server another modelfn version?)",
            )?;
            anyhow::Ok((Instant::now(), totals(&stats.versions)))
        };
        let mut before = read().await?;
        let mut shown = 0u64;
        loop {
            tokio::time::sleep(every).await;
            let now = read().await?;
            let secs = now.0.duration_since(before.0).as_secs_f64().max(1e-3);
            let rows: Vec<Vec<String>> = now
                .1
                .iter()
                .map(|(name, t)| {
                    let b = before.1.get(name).cloned().unwrap_or_default();
                    let rate = |a: u64, b: u64| format!("{:.1}", a.saturating_sub(b) as f64 / secs);
                    vec![
                        name.clone(),
                        rate(t.invocations, b.invocations),
                        rate(t.errors, b.errors),
                        rate(t.throttles, b.throttles),
                        p99_ms(&b.buckets, &t.buckets)
                            .map_or_else(|| "-".into(), |ms| format!("≤{ms}")),
                        t.running.to_string(),
                        t.cold_starts.saturating_sub(b.cold_starts).to_string(),
                        t.instances.to_string(),
                    ]
                })
                .collect();
            // Clear the screen, then draw (plain lines when not a terminal).
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                print!("\x1b[H\x1b[2J");
            }
            println!("modelfn top, every {:.1} s", every.as_secs_f64());
            print!(
                "{}",
                table::render_rows(
                    &[
                        "FUNCTION",
                        "INV/S",
                        "ERR/S",
                        "THROTTLED/S",
                        "P99 MS",
                        "RUNNING",
                        "COLD",
                        "INSTANCES"
                    ],
                    &rows
                )
            );
            shown += 1;
            if self.iterations.is_some_and(|n| shown >= n) {
                return Ok(());
            }
            before = now;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn p99_is_read_from_the_buckets_added() {
        let before = [(0.001, 10), (0.01, 10), (f64::INFINITY, 10)];
        let now = [(0.001, 10), (0.01, 110), (f64::INFINITY, 111)];
        // 101 new: 100 under 10 ms, one slower: the 99th percentile is in the 10 ms bucket.
        assert_eq!(super::p99_ms(&before, &now), Some(10.0));
        assert_eq!(super::p99_ms(&now, &now), None);
    }
}
