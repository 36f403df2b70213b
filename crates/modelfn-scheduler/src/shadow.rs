//! Shadow traffic: a share of an alias's calls also runs on a challenger version, after
//! the caller's answer is on its way, and the two answers are compared, never returned.
//!
//! Mirrored calls are bounded ([`MAX_SHADOW_CALLS`] at once on a server; more are
//! skipped and counted), so a slow challenger can cost the server CPU but never holds a
//! caller. For models the tally compares labels and class probabilities; for code it
//! compares the answers' bytes.

use crate::pool::{lock, Slot};
use crate::Scheduler;
use bytes::Bytes;
use modelfn_core::{Invocation, InvokeError, RuntimeKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Mirrored calls running at once on one server, all aliases together.
pub const MAX_SHADOW_CALLS: usize = 64;

/// Where an alias mirrors calls: `percent` of them to `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShadowRoute {
    pub version: u64,
    pub percent: u32,
}

/// A call to mirror: the challenger's slot and the tally its comparison goes to.
#[derive(Clone)]
pub(crate) struct Mirror {
    pub slot: Arc<Slot>,
    pub tally: Arc<ShadowTally>,
}

/// How a challenger's answers compare with the champion's, for one alias on this server
/// since the challenger was set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowReport {
    pub challenger: u64,
    pub percent: u32,
    /// `model` (labels and probabilities compared) or `code` (bytes compared).
    pub compared_as: String,
    /// Calls chosen for mirroring.
    pub mirrored: u64,
    /// Mirrored calls whose two answers were compared.
    pub compared: u64,
    /// Compared calls whose answers agree: every label equal (models), or byte-equal.
    pub agreed: u64,
    /// `agreed / compared`.
    pub agreement: Option<f64>,
    /// Labels compared one by one (a batch holds many), and how many were equal.
    pub labels_compared: u64,
    pub labels_equal: u64,
    /// Largest and mean absolute difference between matching class probabilities.
    pub max_probability_difference: Option<f64>,
    pub mean_probability_difference: Option<f64>,
    /// The challenger failed (an error or a timeout) where the champion answered.
    pub challenger_errors: u64,
    /// Not mirrored because [`MAX_SHADOW_CALLS`] were already running.
    pub skipped: u64,
}

#[derive(Default)]
struct Counts {
    mirrored: u64,
    compared: u64,
    agreed: u64,
    labels_compared: u64,
    labels_equal: u64,
    prob_max: f64,
    prob_sum: f64,
    prob_n: u64,
    challenger_errors: u64,
    skipped: u64,
}

/// The running tally of one alias's shadow.
pub(crate) struct ShadowTally {
    pub route: ShadowRoute,
    models: bool,
    counts: Mutex<Counts>,
}

impl ShadowTally {
    pub fn new(route: ShadowRoute, runtime: RuntimeKind) -> Self {
        ShadowTally {
            route,
            models: runtime == RuntimeKind::Onnx,
            counts: Mutex::default(),
        }
    }

    fn record(&self, champion: &[u8], challenger: Result<Bytes, InvokeError>) {
        let mut c = lock(&self.counts);
        let Ok(challenger) = challenger else {
            c.challenger_errors += 1;
            return;
        };
        c.compared += 1;
        let parsed = self
            .models
            .then(|| Some((answer(champion)?, answer(&challenger)?)))
            .flatten();
        let agreed = match parsed {
            Some((a, b)) => {
                let n = a.labels.len().max(b.labels.len()) as u64;
                let equal = a
                    .labels
                    .iter()
                    .zip(&b.labels)
                    .filter(|(x, y)| x == y)
                    .count() as u64;
                c.labels_compared += n;
                c.labels_equal += equal;
                if a.probabilities.len() == b.probabilities.len() {
                    for (x, y) in a.probabilities.iter().zip(&b.probabilities) {
                        let d = (x - y).abs();
                        c.prob_max = c.prob_max.max(d);
                        c.prob_sum += d;
                        c.prob_n += 1;
                    }
                }
                equal == n
            }
            None => champion == &challenger[..],
        };
        c.agreed += u64::from(agreed);
    }

    pub fn report(&self) -> ShadowReport {
        let c = lock(&self.counts);
        let share = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        ShadowReport {
            challenger: self.route.version,
            percent: self.route.percent,
            compared_as: if self.models { "model" } else { "code" }.to_string(),
            mirrored: c.mirrored,
            compared: c.compared,
            agreed: c.agreed,
            agreement: share(c.agreed, c.compared),
            labels_compared: c.labels_compared,
            labels_equal: c.labels_equal,
            max_probability_difference: (c.prob_n > 0).then_some(c.prob_max),
            mean_probability_difference: (c.prob_n > 0).then(|| c.prob_sum / c.prob_n as f64),
            challenger_errors: c.challenger_errors,
            skipped: c.skipped,
        }
    }
}

/// The labels and class probabilities of a model's answer, in a fixed order.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    labels: Vec<Value>,
    probabilities: Vec<f64>,
}

/// Reads a model's answer in modelfn's native shape (`prediction`, `probabilities`,
/// `predictions`) or SageMaker's (`predicted_label`, `score`); `None` for anything else
/// (then the bytes are compared).
fn answer(body: &[u8]) -> Option<Answer> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut out = Answer::default();
    walk(&v, &mut out);
    (!out.labels.is_empty()).then_some(out)
}

fn walk(v: &Value, out: &mut Answer) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("prediction" | "predicted_label", x) if !x.is_object() && !x.is_array() => {
                        out.labels.push(x.clone())
                    }
                    ("probabilities", Value::Object(p)) => out
                        .probabilities
                        .extend(p.values().filter_map(Value::as_f64)),
                    ("probabilities", Value::Array(p)) => {
                        out.probabilities.extend(p.iter().filter_map(Value::as_f64))
                    }
                    ("score", Value::Number(n)) => out.probabilities.extend(n.as_f64()),
                    ("predictions", x) => walk(x, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for x in items {
                match x {
                    Value::Object(_) | Value::Array(_) => walk(x, out),
                    Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                        out.labels.push(x.clone())
                    }
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

impl Scheduler {
    /// Runs `inv` on the challenger in the background and compares its answer with
    /// `champion`'s; skipped (and counted) when too many mirrored calls already run.
    pub(crate) fn mirror(self: &Arc<Self>, m: Mirror, mut inv: Invocation, champion: Bytes) {
        lock(&m.tally.counts).mirrored += 1;
        let Ok(permit) = self.shadow_calls.clone().try_acquire_owned() else {
            lock(&m.tally.counts).skipped += 1;
            return;
        };
        inv.request_id = format!("{}-shadow", inv.request_id).into();
        inv.origin.door = "shadow";
        let me = self.clone();
        tokio::spawn(async move {
            let answer = me.run(&m.slot, inv).await.map(|(out, _)| out.body);
            m.tally.record(&champion, answer);
            drop(permit);
        });
    }

    /// How an alias's challenger compares, or `None` when it has no shadow.
    pub fn shadow_report(&self, name: &str, alias: &str) -> Option<ShadowReport> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(name)?.tallies.get(alias).map(|t| t.report())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_answers_compare_labels_and_probabilities() {
        let t = ShadowTally::new(
            ShadowRoute {
                version: 2,
                percent: 100,
            },
            RuntimeKind::Onnx,
        );
        let a = br#"{"prediction":"virginica","probabilities":{"setosa":0.0,"versicolor":0.1,"virginica":0.9}}"#;
        let b = br#"{"prediction":"virginica","probabilities":{"setosa":0.0,"versicolor":0.3,"virginica":0.7}}"#;
        let c = br#"{"prediction":"versicolor","probabilities":{"setosa":0.0,"versicolor":0.6,"virginica":0.4}}"#;
        t.record(a, Ok(Bytes::from_static(b)));
        t.record(a, Ok(Bytes::from_static(c)));
        t.record(
            a,
            Err(InvokeError::Timeout(std::time::Duration::from_secs(1))),
        );
        let r = t.report();
        assert_eq!((r.compared, r.agreed, r.challenger_errors), (2, 1, 1));
        assert_eq!((r.labels_compared, r.labels_equal), (2, 1));
        assert!((r.max_probability_difference.unwrap() - 0.5).abs() < 1e-9);
        // Differences: 0, 0.2, 0.2, then 0, 0.5, 0.5: mean 1.4 / 6.
        assert!((r.mean_probability_difference.unwrap() - 1.4 / 6.0).abs() < 1e-9);
        assert_eq!(r.agreement, Some(0.5));
    }

    #[test]
    fn batches_and_sagemaker_answers_count_each_label() {
        let a = answer(br#"{"predictions":[{"predicted_label":1,"score":0.9},{"predicted_label":0,"score":0.2}]}"#).unwrap();
        assert_eq!(a.labels, vec![Value::from(1), Value::from(0)]);
        assert_eq!(a.probabilities, vec![0.9, 0.2]);
        let b = answer(br#"{"predictions":[1.5, 2.5]}"#).unwrap();
        assert_eq!(b.labels.len(), 2);
        assert!(answer(b"not json").is_none());
    }

    #[test]
    fn code_answers_compare_bytes() {
        let t = ShadowTally::new(
            ShadowRoute {
                version: 3,
                percent: 10,
            },
            RuntimeKind::Python3,
        );
        t.record(
            b"{\"prediction\":1}",
            Ok(Bytes::from_static(b"{\"prediction\":1}")),
        );
        t.record(b"10", Ok(Bytes::from_static(b"11")));
        let r = t.report();
        assert_eq!((r.compared, r.agreed, r.labels_compared), (2, 1, 0));
        assert_eq!(r.compared_as, "code");
    }
}
