//! Usage plans: rate, burst and a daily or monthly quota for keys, on API stages
//! (`api/STAGE`) and function URLs (`url:FUNCTION`). A request with a key on a target
//! that plans govern must carry a key of one of those plans; its plan's token bucket
//! and quota decide, and an answer over either is a 429 with `Retry-After`. Targets no
//! plan governs need only a valid key.
//!
//! Rate and burst are a token bucket on each node. Quotas count on the node too when the
//! metadata store is its own (SQLite: they restart with the server), and in the shared
//! store when it is a cluster's (PostgreSQL: exact over every node, one conditional
//! upsert per batch of requests, `quota`). `keys usage` counts on each node.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A usage plan, as `modelfn plans create` or `PUT /v1/plans/{name}` sets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    #[serde(default)]
    pub name: String,
    /// Requests per second, steady.
    pub rate: f64,
    /// Requests at once above the rate.
    pub burst: u32,
    /// Requests per period (none: no quota).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    #[serde(default)]
    pub period: Period,
    /// `api/STAGE` and `url:FUNCTION`.
    pub targets: Vec<String>,
    /// Access key ids.
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Day,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

impl UsagePlan {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err("rate must be a positive number of requests per second".into());
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".into());
        }
        if self.targets.is_empty() {
            return Err("a plan needs at least one target (API/STAGE or url:FUNCTION)".into());
        }
        if let Some(t) = self
            .targets
            .iter()
            .find(|t| !(t.starts_with("url:") || t.contains('/')))
        {
            return Err(format!(
                "target {t:?} is neither API/STAGE nor url:FUNCTION"
            ));
        }
        Ok(())
    }
}

/// What a plan says of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Allowed,
    Forbidden(String),
    Throttled {
        message: String,
        retry_after: Duration,
    },
}

#[derive(Default)]
pub struct Meter {
    buckets: HashMap<(String, String), (f64, Instant)>,
    quota_used: HashMap<(String, String, String), u64>,
    usage: HashMap<String, BTreeMap<String, u64>>,
}

/// `2026-11-22` and `2026-11` for now.
fn periods() -> (String, String) {
    let day = modelfn_registry::now_ms();
    let text = modelfn_telemetry::time::rfc3339_ms(day);
    (text[..10].to_string(), text[..7].to_string())
}

/// Seconds until the end of the current UTC day or month (roughly for months).
fn until_period_end(p: Period) -> Duration {
    let now_s = modelfn_registry::now_ms() / 1000;
    let day_left = 86_400 - now_s.rem_euclid(86_400);
    match p {
        Period::Day => Duration::from_secs(day_left as u64),
        Period::Month => Duration::from_secs(day_left as u64 + 86_400 * 3),
    }
}

/// The period a plan's quota counts in now (`2026-11-22` or `2026-11`), and today.
pub fn period_of(plan: &UsagePlan) -> (String, String) {
    let (day, month) = periods();
    match plan.period {
        Period::Day => (day.clone(), day),
        Period::Month => (month, day),
    }
}

/// The refusal of a request over `plan`'s quota.
pub fn quota_used_up(plan: &UsagePlan, quota: u64) -> Admission {
    Admission::Throttled {
        message: format!(
            "the quota of usage plan '{}' ({quota} per {:?}) is used up",
            plan.name, plan.period
        )
        .to_lowercase(),
        retry_after: until_period_end(plan.period),
    }
}

impl Meter {
    /// Applies `plan` to one request with key `key`, its quota counted here.
    pub fn admit(&mut self, plan: &UsagePlan, key: &str) -> Admission {
        let (period, day) = period_of(plan);
        if let Some(q) = plan.quota {
            let used = self
                .quota_used
                .get(&(plan.name.clone(), key.to_string(), period.clone()))
                .copied()
                .unwrap_or(0);
            if used >= q {
                return quota_used_up(plan, q);
            }
        }
        let rate = self.admit_rate(plan, key);
        if rate != Admission::Allowed {
            return rate;
        }
        *self
            .quota_used
            .entry((plan.name.clone(), key.to_string(), period))
            .or_insert(0) += 1;
        self.record(key, &day);
        Admission::Allowed
    }

    /// Applies `plan`'s rate and burst (this node's token bucket) to one request.
    pub fn admit_rate(&mut self, plan: &UsagePlan, key: &str) -> Admission {
        let now = Instant::now();
        let entry = self
            .buckets
            .entry((plan.name.clone(), key.to_string()))
            .or_insert((f64::from(plan.burst), now));
        entry.0 = (entry.0 + (now - entry.1).as_secs_f64() * plan.rate).min(f64::from(plan.burst));
        entry.1 = now;
        if entry.0 < 1.0 {
            let wait =
                Duration::from_secs_f64((1.0 - entry.0) / plan.rate).max(Duration::from_secs(1));
            return Admission::Throttled {
                message: format!(
                    "usage plan '{}' allows {} requests per second (burst {})",
                    plan.name, plan.rate, plan.burst
                ),
                retry_after: wait,
            };
        }
        entry.0 -= 1.0;
        Admission::Allowed
    }

    /// Counts one request of `key` on `day` (for `modelfn keys usage`).
    pub fn record(&mut self, key: &str, day: &str) {
        *self
            .usage
            .entry(key.to_string())
            .or_default()
            .entry(day.to_string())
            .or_insert(0) += 1;
    }

    pub fn record_now(&mut self, key: &str) {
        let (day, _) = periods();
        self.record(key, &day);
    }

    pub fn usage(&self, key: &str) -> BTreeMap<String, u64> {
        self.usage.get(key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: f64, burst: u32, quota: Option<u64>) -> UsagePlan {
        UsagePlan {
            name: "p".into(),
            rate,
            burst,
            quota,
            period: Period::Day,
            targets: vec!["calc/PRD".into()],
            keys: vec!["K".into()],
        }
    }

    #[test]
    fn burst_then_rate_then_quota() {
        let mut m = Meter::default();
        let p = plan(0.001, 2, None);
        assert_eq!(m.admit(&p, "K"), Admission::Allowed);
        assert_eq!(m.admit(&p, "K"), Admission::Allowed);
        assert!(matches!(m.admit(&p, "K"), Admission::Throttled { .. }));
        let q = plan(1000.0, 100, Some(3));
        let mut m = Meter::default();
        for _ in 0..3 {
            assert_eq!(m.admit(&q, "K"), Admission::Allowed);
        }
        let Admission::Throttled { message, .. } = m.admit(&q, "K") else {
            panic!("the quota should throttle");
        };
        assert!(message.contains("quota"), "{message}");
        assert_eq!(m.usage("K").values().sum::<u64>(), 3);
        assert!(plan(0.0, 1, None).validate().is_err());
    }
}
