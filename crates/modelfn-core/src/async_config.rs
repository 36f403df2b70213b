//! How a function's asynchronous invocations are tried and where their outcomes go: the
//! manifest's `[async]` table, as Lambda's event invoke configuration. Every field is
//! optional; the server's `async_*` settings apply where one is not set.

use crate::name::FunctionName;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const MAX_AGE_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(6 * 3600));

/// A function's `[async]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncConfig {
    /// Attempts at most: the first and the retries (1 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Past this age no attempt starts (1s to 6h).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::text"
    )]
    pub max_age: Option<Duration>,
    /// A function (`name` or `name:qualifier`) invoked asynchronously with a record of
    /// each event that succeeded: the event, the answer, the version that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    /// A function invoked asynchronously with a record of each event that failed for
    /// good. The event is in the dead-letter store either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// Payload megabytes waiting for this function at most: past it, new events are
    /// refused with 429 until the queue drains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued_mb: Option<u64>,
}

impl AsyncConfig {
    pub fn is_default(&self) -> bool {
        *self == AsyncConfig::default()
    }

    /// Checks the values; `own` is the function's name (it may not be its own success
    /// destination: every success would run it again).
    pub fn validate(&self, own: &str) -> Result<(), String> {
        if let Some(n) = self.max_attempts {
            if !(1..=100).contains(&n) {
                return Err(format!("max_attempts = {n} is not between 1 and 100"));
            }
        }
        let (lo, hi) = MAX_AGE_RANGE;
        if self.max_age.is_some_and(|a| a < lo || a > hi) {
            return Err("max_age must be between 1s and 6h".into());
        }
        if self.max_queued_mb == Some(0) {
            return Err("max_queued_mb must be at least 1".into());
        }
        for (key, dest) in [
            ("on_success", &self.on_success),
            ("on_failure", &self.on_failure),
        ] {
            if let Some(d) = dest {
                let (name, _) = destination(d).map_err(|e| format!("{key} = {d:?}: {e}"))?;
                if key == "on_success" && name == own {
                    return Err(format!(
                        "on_success = {d:?} is the function itself: each success would run it again"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A destination's function name and qualifier (`$LATEST` when none is given).
pub fn destination(d: &str) -> Result<(String, String), String> {
    let (name, qualifier) = match d.split_once(':') {
        Some((n, q)) => (n, q),
        None => (d, "$LATEST"),
    };
    let name = FunctionName::parse(name).map_err(|e| e.reason.to_string())?;
    let ok = !qualifier.is_empty()
        && qualifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'));
    if !ok {
        return Err(format!("{qualifier:?} is not a version or an alias"));
    }
    Ok((name.to_string(), qualifier.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_bounds() {
        let c: AsyncConfig = toml::from_str(
            "max_attempts = 2\nmax_age = \"10m\"\non_success = \"audit:live\"\non_failure = \"alert\"\n",
        )
        .unwrap();
        assert!(c.validate("f").is_ok());
        assert_eq!(
            destination("audit:live").unwrap(),
            ("audit".into(), "live".into())
        );
        assert_eq!(destination("alert").unwrap().1, "$LATEST");
        let own = AsyncConfig {
            on_success: Some("f".into()),
            ..Default::default()
        };
        assert!(own
            .validate("f")
            .unwrap_err()
            .contains("the function itself"));
        let bad = AsyncConfig {
            max_attempts: Some(0),
            ..Default::default()
        };
        assert!(bad.validate("f").is_err());
        let bad = AsyncConfig {
            on_failure: Some("no spaces".into()),
            ..Default::default()
        };
        assert!(bad.validate("f").unwrap_err().starts_with("on_failure"));
    }
}
