//! Stream sources: a function's `[[streams]]` tables, each an event-source mapping from a
//! broker's stream to the function, as Lambda maps a Kinesis stream. modelfn reads the
//! stream's shards and invokes the function with batches of records, one batch in flight
//! per shard (or per partition-key lane within a shard, with a parallelization factor),
//! and checkpoints a record only once a batch that held it succeeded.
//!
//! The broker today is Redis Streams: a shard is a stream key (`STREAM:0` … `STREAM:N-1`,
//! or `STREAM` itself with one shard), read through a consumer group named
//! `modelfn:FUNCTION`, so the checkpoint lives in Redis.

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const MAX_SHARDS: u32 = 256;
pub const MAX_BATCH_SIZE: u32 = 10_000;
pub const MAX_BATCHING_WINDOW: Duration = Duration::from_secs(300);
pub const MAX_PARALLELIZATION: u32 = 10;
pub const MAX_RETRIES: u32 = 10_000;

/// One `[[streams]]` table of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSource {
    /// The Redis server: `redis://[user:password@]host:port[/db]`.
    pub redis: String,
    /// The stream's name: its shards are the keys `NAME:0` to `NAME:N-1` (`NAME` itself
    /// when there is one shard).
    pub stream: String,
    /// How many shards the stream has (1 by default).
    #[serde(default = "one")]
    pub shards: u32,
    /// Records per invocation at most (100 by default).
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// How long to gather records before invoking with fewer than `batch_size` (0 by
    /// default: whatever is there).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::text"
    )]
    pub batching_window: Option<Duration>,
    /// Batches in flight per shard (1 by default). Above 1, records are spread over
    /// lanes by their `partition_key` field, in order within each key.
    #[serde(default = "one")]
    pub parallelization_factor: u32,
    /// The field of a record that keeps it in order with others of the same value when
    /// `parallelization_factor` is above 1 (`key` by default).
    #[serde(default = "default_partition_key")]
    pub partition_key: String,
    /// Where a new mapping starts: `trim_horizon` (the oldest record, by default) or
    /// `latest` (records added from now on).
    #[serde(default)]
    pub starting_position: StartingPosition,
    /// Further tries of a failing batch (2 by default); a record that still fails goes to
    /// the dead-letter store and the shard moves on.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Split a failing batch in two and try each half, down to the one record that fails
    /// (on by default), so that one poison record does not fail its neighbours.
    #[serde(default = "yes")]
    pub bisect_on_error: bool,
    /// The alias or version to invoke (the latest version by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
}

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartingPosition {
    #[default]
    TrimHorizon,
    Latest,
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_batch_size() -> u32 {
    100
}
fn default_retries() -> u32 {
    2
}
fn default_partition_key() -> String {
    "key".into()
}

impl StreamSource {
    /// The shards' stream keys.
    pub fn shard_keys(&self) -> Vec<String> {
        if self.shards == 1 {
            return vec![self.stream.clone()];
        }
        (0..self.shards)
            .map(|i| format!("{}:{i}", self.stream))
            .collect()
    }

    /// The Redis URL without its password, to show.
    pub fn redis_shown(&self) -> String {
        match (self.redis.split_once("://"), self.redis.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &self.redis[at..]),
            _ => self.redis.clone(),
        }
    }

    /// Checks every value against its bounds.
    pub fn validate(&self) -> Result<(), String> {
        let rest = self.redis.strip_prefix("redis://").ok_or_else(|| {
            format!(
                "redis = {:?} is not a redis:// URL (TLS, rediss://, is not supported yet)",
                self.redis_shown()
            )
        })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err("redis = \"redis://\" names no host".into());
        }
        if self.stream.is_empty()
            || self.stream.len() > 200
            || self.stream.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(format!(
                "stream = {:?} must be 1 to 200 characters, without spaces or control characters",
                self.stream
            ));
        }
        let range = |name: &str, v: u32, hi: u32| {
            if (1..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} = {v} is not between 1 and {hi}"))
            }
        };
        range("shards", self.shards, MAX_SHARDS)?;
        range("batch_size", self.batch_size, MAX_BATCH_SIZE)?;
        range(
            "parallelization_factor",
            self.parallelization_factor,
            MAX_PARALLELIZATION,
        )?;
        if self.max_retries > MAX_RETRIES {
            return Err(format!(
                "max_retries = {} is more than {MAX_RETRIES}",
                self.max_retries
            ));
        }
        if self
            .batching_window
            .is_some_and(|w| w > MAX_BATCHING_WINDOW)
        {
            return Err("batching_window must be at most 5m".into());
        }
        if self.partition_key.is_empty() {
            return Err("partition_key must name a field".into());
        }
        if let Some(q) = &self.qualifier {
            let ok = !q.is_empty()
                && q.len() <= 128
                && q.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'));
            if !ok {
                return Err(format!(
                    "qualifier = {q:?} is not an alias name or a version number"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StreamSource, String> {
        let s: StreamSource = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn defaults_shards_and_bounds() {
        let s =
            parse("redis = \"redis://127.0.0.1:6379\"\nstream = \"orders\"\nshards = 4\n").unwrap();
        assert_eq!(
            s.shard_keys(),
            ["orders:0", "orders:1", "orders:2", "orders:3"]
        );
        assert_eq!(
            (s.batch_size, s.max_retries, s.bisect_on_error),
            (100, 2, true)
        );
        let one = parse("redis = \"redis://h:1\"\nstream = \"s\"\n").unwrap();
        assert_eq!(one.shard_keys(), ["s"]);
        for (bad, want) in [
            ("redis = \"http://h\"\nstream = \"s\"", "not a redis:// URL"),
            ("redis = \"redis://h\"\nstream = \"\"", "stream = \"\""),
            (
                "redis = \"redis://h\"\nstream = \"s\"\nshards = 0",
                "shards = 0",
            ),
            (
                "redis = \"redis://h\"\nstream = \"s\"\nbatching_window = \"1h\"",
                "at most 5m",
            ),
            (
                "redis = \"redis://h\"\nstream = \"s\"\ncolour = 1",
                "colour",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let secret = StreamSource {
            redis: "redis://u:pw@h:1".into(),
            ..one
        };
        assert_eq!(secret.redis_shown(), "redis://***@h:1");
    }
}
