//! How a function scales: concurrency limits, provisioned instances, keep-alive (scale to
//! zero), and dynamic batching for models. Set in the manifest's `[scaling]` table and
//! changed at run time with `modelfn config`; every field is optional.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Idle instances stop after this long by default (scale to zero).
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(300);
/// Rows merged into one model run at most, by default.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// A function's scaling settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    /// At most this many invocations of the function at once (Lambda's reserved
    /// concurrency, which also caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
    /// Instances kept initialized at all times (not cold, never stopped for idleness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_concurrency: Option<u32>,
    /// An idle instance stops after this long (`5m` by default).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::text"
    )]
    pub keep_alive: Option<Duration>,
    /// Models: rows merged into one run at most (256 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
    /// Models: how long the first request of a batch may wait for others (0 by default:
    /// whatever is already waiting is merged, nobody waits).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::text"
    )]
    pub max_delay: Option<Duration>,
}

impl ScalingConfig {
    /// `other`'s fields where set, else ours.
    pub fn overlay(&self, other: &ScalingConfig) -> ScalingConfig {
        ScalingConfig {
            reserved_concurrency: other.reserved_concurrency.or(self.reserved_concurrency),
            provisioned_concurrency: other
                .provisioned_concurrency
                .or(self.provisioned_concurrency),
            keep_alive: other.keep_alive.or(self.keep_alive),
            max_batch: other.max_batch.or(self.max_batch),
            max_delay: other.max_delay.or(self.max_delay),
        }
    }

    pub fn keep_alive(&self) -> Duration {
        self.keep_alive.unwrap_or(DEFAULT_KEEP_ALIVE)
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch.unwrap_or(DEFAULT_MAX_BATCH)
    }

    pub fn max_delay(&self) -> Duration {
        self.max_delay.unwrap_or(Duration::ZERO)
    }

    pub fn provisioned(&self) -> usize {
        self.provisioned_concurrency.unwrap_or(0) as usize
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(r), Some(p)) = (self.reserved_concurrency, self.provisioned_concurrency) {
            if p > r {
                return Err(format!(
                    "provisioned_concurrency = {p} is more than reserved_concurrency = {r}"
                ));
            }
        }
        if self.max_batch == Some(0) {
            return Err("max_batch must be at least 1".into());
        }
        if self.max_delay.is_some_and(|d| d > Duration::from_secs(1)) {
            return Err("max_delay must be at most 1s".into());
        }
        if self.provisioned_concurrency.is_some_and(|p| p > 1000) {
            return Err("provisioned_concurrency must be at most 1000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_and_validation() {
        let base: ScalingConfig = toml::from_str("keep_alive = \"5m\"\nmax_batch = 32\n").unwrap();
        let over = ScalingConfig {
            max_batch: Some(8),
            ..Default::default()
        };
        let eff = base.overlay(&over);
        assert_eq!(
            (eff.keep_alive(), eff.max_batch()),
            (Duration::from_secs(300), 8)
        );
        assert!(ScalingConfig {
            reserved_concurrency: Some(1),
            provisioned_concurrency: Some(2),
            ..Default::default()
        }
        .validate()
        .is_err());
        let e = toml::from_str::<ScalingConfig>("keep_alive = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a duration"), "{e}");
        assert_eq!(
            toml::to_string(&eff).unwrap(),
            "keep_alive = \"5m\"\nmax_batch = 8\n"
        );
    }
}
