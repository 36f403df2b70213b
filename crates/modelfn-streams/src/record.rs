//! A stream record and the event a batch of them makes, in the shape of Lambda's stream
//! events: `{"Records": [{"eventSource", "eventSourceARN", "eventID", "shard", "id",
//! "approximateArrivalTimestamp", "fields": {...}}]}`. A field that is not UTF-8 comes
//! as `{"base64": "..."}`.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// One entry of a Redis stream: its id (`MILLISECONDS-SEQUENCE`) and fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// When Redis added it (milliseconds since the epoch, from its id).
    pub fn added_ms(&self) -> Option<i64> {
        self.id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
    }

    /// A field's value.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The event of a batch of records of `shard`, read from `source` (shown without a
/// password).
pub fn event(source: &str, shard: &str, records: &[Record]) -> Bytes {
    let arn = format!("{source}/{shard}");
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let fields: Map<String, Value> = r
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), value(v)))
                .collect();
            json!({
                "eventSource": "modelfn:redis",
                "eventSourceARN": arn,
                "eventID": format!("{shard}/{}", r.id),
                "shard": shard,
                "id": r.id,
                "approximateArrivalTimestamp": r.added_ms().map(|ms| ms as f64 / 1000.0),
                "fields": fields,
            })
        })
        .collect();
    Bytes::from(serde_json::to_vec(&json!({ "Records": records })).unwrap_or_default())
}

fn value(v: &[u8]) -> Value {
    match std::str::from_utf8(v) {
        Ok(s) => Value::from(s),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(v) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_becomes_a_records_event() {
        let r = Record {
            id: "1700000000123-4".into(),
            fields: vec![("key".into(), b"a".to_vec()), ("raw".into(), vec![0xff])],
        };
        assert_eq!(r.added_ms(), Some(1_700_000_000_123));
        let e: Value = serde_json::from_slice(&event("redis://h:1", "s:0", &[r])).unwrap();
        let one = &e["Records"][0];
        assert_eq!(one["eventID"], "s:0/1700000000123-4");
        assert_eq!(one["eventSourceARN"], "redis://h:1/s:0");
        assert_eq!(one["fields"]["key"], "a");
        assert_eq!(one["fields"]["raw"]["base64"], "/w==");
        assert_eq!(one["approximateArrivalTimestamp"], 1_700_000_000.123);
    }
}
