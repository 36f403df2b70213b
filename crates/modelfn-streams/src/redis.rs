//! One shard's Redis stream, read through the mapping's consumer group: the group is made
//! if missing (at the oldest record or at the end), records are read (this consumer's
//! unacknowledged ones first, then new ones), acknowledged after success, and the group's
//! lag is read for `/metrics`.

use crate::record::Record;
use modelfn_core::StartingPosition;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult, Value};
use std::time::Duration;

/// modelfn's one consumer in each group.
const CONSUMER: &str = "modelfn";

/// A connection to one shard.
#[derive(Clone)]
pub(crate) struct ShardStream {
    conn: MultiplexedConnection,
    key: String,
    group: String,
}

/// Which records a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Records this consumer was given before and never acknowledged (a restart).
    Unacknowledged,
    /// Records never given to the group, waiting up to the duration for one.
    New(Duration),
}

impl ShardStream {
    pub async fn connect(url: &str, key: &str, group: &str) -> RedisResult<ShardStream> {
        let client = redis::Client::open(url)?;
        // A blocking read waits at most a second: answers come well within this.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(ShardStream {
            conn,
            key: key.to_string(),
            group: group.to_string(),
        })
    }

    /// Makes the consumer group (and the stream) unless it exists.
    pub async fn ensure_group(&mut self, start: StartingPosition) -> RedisResult<()> {
        let id = match start {
            StartingPosition::TrimHorizon => "0",
            StartingPosition::Latest => "$",
        };
        let made: RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.group)
            .arg(id)
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match made {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Up to `count` records.
    pub async fn read(&mut self, what: Read, count: usize) -> RedisResult<Vec<Record>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(CONSUMER)
            .arg("COUNT")
            .arg(count);
        let from = match what {
            Read::Unacknowledged => "0",
            Read::New(wait) => {
                cmd.arg("BLOCK").arg(wait.as_millis().max(1) as u64);
                ">"
            }
        };
        let v: Value = cmd
            .arg("STREAMS")
            .arg(&self.key)
            .arg(from)
            .query_async(&mut self.conn)
            .await?;
        Ok(records(v))
    }

    /// Checkpoints records: the group will not give them again.
    pub async fn ack(&mut self, ids: impl Iterator<Item = &str>) -> RedisResult<()> {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.key).arg(&self.group);
        let mut any = false;
        for id in ids {
            cmd.arg(id);
            any = true;
        }
        if any {
            let _: Value = cmd.query_async(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Records not yet processed: those never given to the group plus those given and
    /// not acknowledged (Redis 7's `lag` and `pending` of `XINFO GROUPS`).
    pub async fn lag(&mut self) -> RedisResult<u64> {
        let v: Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.key)
            .query_async(&mut self.conn)
            .await?;
        let groups = items(v);
        for g in groups {
            let fields = pairs(g);
            let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            if get("name").map(text).as_deref() != Some(self.group.as_str()) {
                continue;
            }
            let lag = get("lag").and_then(int).unwrap_or(0);
            let pending = get("pending").and_then(int).unwrap_or(0);
            return Ok(lag + pending);
        }
        Ok(0)
    }
}

/// The records of an `XREADGROUP` answer (one stream): each id with its fields. A record
/// deleted from the stream while unacknowledged comes without fields and is skipped.
fn records(v: Value) -> Vec<Record> {
    let mut out = Vec::new();
    for stream in items(v) {
        let mut parts = items(stream).into_iter();
        let (Some(_key), Some(entries)) = (parts.next(), parts.next()) else {
            continue;
        };
        for entry in items(entries) {
            let mut e = items(entry).into_iter();
            let (Some(id), Some(fields)) = (e.next(), e.next()) else {
                continue;
            };
            let flat = items(fields);
            if flat.is_empty() {
                continue;
            }
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                fields.push((text(&k), bytes(v)));
            }
            out.push(Record {
                id: text(&id),
                fields,
            });
        }
    }
    out
}

/// The elements of an array (or a map's keys and values in turn); nothing otherwise.
fn items(v: Value) -> Vec<Value> {
    if let Value::Array(a) = v {
        return a;
    }
    if let Value::Map(m) = v {
        return m.into_iter().flat_map(|(k, v)| [k, v]).collect();
    }
    Vec::new()
}

/// A flat list of alternating names and values as pairs.
fn pairs(v: Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut it = items(v).into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((text(&k), v));
    }
    out
}

fn bytes(v: Value) -> Vec<u8> {
    if let Value::BulkString(b) = v {
        return b;
    }
    if let Value::SimpleString(s) = v {
        return s.into_bytes();
    }
    Vec::new()
}

fn text(v: &Value) -> String {
    if let Value::BulkString(b) = v {
        return String::from_utf8_lossy(b).into_owned();
    }
    if let Value::SimpleString(s) = v {
        return s.clone();
    }
    String::new()
}

fn int(v: &Value) -> Option<u64> {
    if let Value::Int(n) = v {
        return u64::try_from(*n).ok();
    }
    text(v).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn an_xreadgroup_answer_becomes_records() {
        let answer = Value::Array(vec![Value::Array(vec![
            bulk("orders:0"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("key"), bulk("a"), bulk("n"), bulk("1")]),
                ]),
                // Deleted while unacknowledged: no fields.
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let got = records(answer);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "1-0");
        assert_eq!(got[0].fields[1], ("n".to_string(), b"1".to_vec()));
        assert!(records(Value::Nil).is_empty(), "a read that timed out");
    }
}
