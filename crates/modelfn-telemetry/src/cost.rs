//! The cost report: what the recorded usage of a period (invocations, GB-seconds) would
//! cost on Lambda behind API Gateway, beside an always-on server, with a price table
//! whose defaults are seed 002's. With a projection (`per_day` invocations for `days`
//! days), the recorded invocations' mean billed duration and memory are scaled to that
//! volume, as the seed's worked example does.

use crate::records::InvocationRecord;
use serde::{Deserialize, Serialize};

/// Prices, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prices {
    /// Lambda, per million invocations.
    pub per_million_invocations: f64,
    /// Lambda, per GB-second (memory × billed duration).
    pub per_gb_second: f64,
    /// API Gateway, per million calls.
    pub api_per_million: f64,
    /// An always-on server, per month.
    pub server_per_month: f64,
}

impl Default for Prices {
    /// Seed 002's: $0.20 per million invocations, $0.0000166667 per GB-s ($0.133 per
    /// 1000 s at 8 GB), $1 per million API calls, and a server at $66.40 a month: the
    /// seed's table is an image we cannot read, and this is the price at which its
    /// figures give the 77.5% saving it states.
    fn default() -> Self {
        Prices {
            per_million_invocations: 0.20,
            per_gb_second: 0.000_016_666_7,
            api_per_million: 1.0,
            server_per_month: 66.40,
        }
    }
}

/// What was used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Invocations that ran (a refused one is not billed).
    pub invocations: u64,
    pub gb_seconds: f64,
    pub billed_seconds: f64,
}

impl Usage {
    /// Adds one record's usage (none for an invocation that did not run).
    pub fn add(&mut self, r: &InvocationRecord) {
        if r.billed_ms == 0 {
            return;
        }
        let s = r.billed_ms as f64 / 1e3;
        self.invocations += 1;
        self.billed_seconds += s;
        self.gb_seconds += f64::from(r.memory_mb) / 1024.0 * s;
    }

    /// `invocations` invocations like the mean of these.
    pub fn scaled_to(&self, invocations: u64) -> Usage {
        if self.invocations == 0 {
            return Usage::default();
        }
        let k = invocations as f64 / self.invocations as f64;
        Usage {
            invocations,
            gb_seconds: self.gb_seconds * k,
            billed_seconds: self.billed_seconds * k,
        }
    }
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// One function's, or every function's (`None`).
    pub function: Option<String>,
    /// The period the usage was recorded over.
    pub period_days: f64,
    pub recorded: Usage,
    /// `per_day` × `days` invocations like the recorded ones, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<Projection>,
    pub prices: Prices,
    /// Of the projection if there is one, else of what was recorded.
    pub lambda_invocations_usd: f64,
    pub lambda_compute_usd: f64,
    pub api_gateway_usd: f64,
    pub serverless_usd: f64,
    /// The always-on server over the same span (a month for a projection).
    pub server_usd: f64,
    /// How much less serverless costs than the server, in percent (negative: more).
    pub saving_percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub per_day: u64,
    pub days: u32,
    pub usage: Usage,
}

/// The report for `recorded` usage over `period_days`, projected if asked.
pub fn report(
    function: Option<String>,
    recorded: Usage,
    period_days: f64,
    projection: Option<(u64, u32)>,
    prices: Prices,
) -> CostReport {
    let projected = projection.map(|(per_day, days)| Projection {
        per_day,
        days,
        usage: recorded.scaled_to(per_day * u64::from(days)),
    });
    let usage = projected.map_or(recorded, |p| p.usage);
    let millions = usage.invocations as f64 / 1e6;
    let lambda_invocations_usd = millions * prices.per_million_invocations;
    let lambda_compute_usd = usage.gb_seconds * prices.per_gb_second;
    let api_gateway_usd = millions * prices.api_per_million;
    let serverless_usd = lambda_invocations_usd + lambda_compute_usd + api_gateway_usd;
    // A projection is a month's usage; a recorded period is its own span.
    let server_usd = match projected {
        Some(_) => prices.server_per_month,
        None => prices.server_per_month * period_days / 30.0,
    };
    let saving_percent = if server_usd > 0.0 {
        (1.0 - serverless_usd / server_usd) * 100.0
    } else {
        0.0
    };
    CostReport {
        function,
        period_days,
        recorded,
        projected,
        prices,
        lambda_invocations_usd,
        lambda_compute_usd,
        api_gateway_usd,
        serverless_usd,
        server_usd,
        saving_percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_002s_worked_example() {
        // 10,000 inferences a day of 0.5 s at 8 GB, 22 working days.
        let one = Usage {
            invocations: 1,
            gb_seconds: 8.0 * 0.5,
            billed_seconds: 0.5,
        };
        let r = report(None, one, 1.0, Some((10_000, 22)), Prices::default());
        assert!((r.lambda_compute_usd - 14.667).abs() < 0.01, "{r:?}");
        assert!((r.serverless_usd - 14.931).abs() < 0.01, "{r:?}");
        assert!((r.saving_percent - 77.5).abs() < 0.1, "{r:?}");
    }
}
