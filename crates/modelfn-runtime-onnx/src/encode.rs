//! Answers as JSON: `{"prediction": ..., "probabilities": {...}}` for one row,
//! `{"predictions": [...]}` for a batch, in request order.

use crate::model::{Label, Prediction, RowAnswer};
use bytes::Bytes;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::sync::Arc;

struct Row<'a> {
    answer: &'a RowAnswer,
    classes: &'a [Arc<str>],
}

struct Probabilities<'a> {
    values: &'a [f32],
    classes: &'a [Arc<str>],
}

impl Serialize for Prediction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Prediction::Label(Label::Int(i)) => s.serialize_i64(*i),
            Prediction::Label(Label::Str(l)) => s.serialize_str(l),
            Prediction::Value(v) => s.serialize_f64(*v),
        }
    }
}

impl Serialize for Probabilities<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.values.len()))?;
        for (class, p) in self.classes.iter().zip(self.values) {
            map.serialize_entry(&**class, p)?;
        }
        map.end()
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let probs = self.answer.probabilities.as_deref();
        let mut map = s.serialize_map(Some(1 + probs.is_some() as usize))?;
        map.serialize_entry("prediction", &self.answer.prediction)?;
        if let Some(values) = probs {
            map.serialize_entry(
                "probabilities",
                &Probabilities {
                    values,
                    classes: self.classes,
                },
            )?;
        }
        map.end()
    }
}

struct Batch<'a> {
    answers: &'a [RowAnswer],
    classes: &'a [Arc<str>],
}

impl Serialize for Batch<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        let rows: Vec<Row> = self
            .answers
            .iter()
            .map(|answer| Row {
                answer,
                classes: self.classes,
            })
            .collect();
        map.serialize_entry("predictions", &rows)?;
        map.end()
    }
}

/// Writes the answers of one request.
pub fn encode(answers: &[RowAnswer], classes: &[Arc<str>], batch: bool) -> Bytes {
    match (batch, answers) {
        (false, [one]) => exact(&Row {
            answer: one,
            classes,
        }),
        _ => exact(&Batch { answers, classes }),
    }
}

/// `value` as JSON in a buffer of exactly its length: one allocation. A body that fits
/// [`SMALL`] is written on the stack and copied once; a `Vec` grown by serde and turned
/// into `Bytes` is two (its buffer, and the shared header `Bytes` adds when the
/// capacity is larger than the length).
fn exact(value: &impl Serialize) -> Bytes {
    let mut small = [0u8; SMALL];
    let mut cursor = std::io::Cursor::new(&mut small[..]);
    if serde_json::to_writer(&mut cursor, value).is_ok() {
        let n = usize::try_from(cursor.position()).unwrap_or(SMALL);
        return Bytes::copy_from_slice(&small[..n.min(SMALL)]);
    }
    // Serializing strings and finite numbers into memory cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// The largest body [`exact`] writes on the stack (a row with a few classes is ~100 B).
const SMALL: usize = 512;

/// One row as SageMaker's built-in algorithms answer it: a binary classifier
/// `{"score": p(class 1), "predicted_label": i}`, a multi-class one
/// `{"score": [p...], "predicted_label": i}`, a regressor `{"score": value}`.
fn sagemaker_row(a: &RowAnswer, classes: &[Arc<str>]) -> serde_json::Value {
    use serde_json::json;
    let index = |p: &Prediction| -> serde_json::Value {
        match p {
            Prediction::Label(Label::Int(i)) => json!(i),
            Prediction::Label(Label::Str(s)) => match classes.iter().position(|c| **c == **s) {
                Some(i) => json!(i),
                None => json!(&**s),
            },
            Prediction::Value(v) => json!(v),
        }
    };
    match (&a.prediction, a.probabilities.as_deref()) {
        (Prediction::Value(v), _) => json!({ "score": v }),
        (p, Some([_, p1])) => json!({ "score": p1, "predicted_label": index(p) }),
        (p, Some(ps)) => json!({ "score": ps, "predicted_label": index(p) }),
        (p, None) => json!({ "predicted_label": index(p) }),
    }
}

/// Writes the answers of one request in SageMaker's shape (always a list).
pub fn encode_sagemaker(answers: &[RowAnswer], classes: &[Arc<str>]) -> Vec<u8> {
    let rows: Vec<serde_json::Value> = answers.iter().map(|a| sagemaker_row(a, classes)).collect();
    serde_json::to_vec(&serde_json::json!({ "predictions": rows })).unwrap_or_default()
}

/// Writes the answers as Open Inference Protocol output tensors: `label` (INT64, or
/// BYTES for named classes) and `probabilities` (FP32 `[N, C]`), or `value` (FP32
/// `[N, 1]`) for a regressor.
pub fn encode_open_inference(answers: &[RowAnswer], classes: &[Arc<str>]) -> Vec<u8> {
    use serde_json::json;
    let n = answers.len();
    let mut outputs = Vec::new();
    let values: Vec<f64> = answers
        .iter()
        .filter_map(|a| match a.prediction {
            Prediction::Value(v) => Some(v),
            _ => None,
        })
        .collect();
    if values.len() == n && n > 0 {
        outputs.push(json!({"name": "value", "datatype": "FP32", "shape": [n, 1], "data": values}));
    } else {
        let ints: Vec<i64> = answers
            .iter()
            .filter_map(|a| match a.prediction {
                Prediction::Label(Label::Int(i)) => Some(i),
                Prediction::Label(Label::Str(_)) | Prediction::Value(_) => None,
            })
            .collect();
        if ints.len() == n {
            outputs.push(json!({"name": "label", "datatype": "INT64", "shape": [n], "data": ints}));
        } else {
            let names: Vec<String> = answers
                .iter()
                .map(|a| match &a.prediction {
                    Prediction::Label(Label::Str(s)) => s.to_string(),
                    Prediction::Label(Label::Int(i)) => i.to_string(),
                    Prediction::Value(v) => v.to_string(),
                })
                .collect();
            outputs
                .push(json!({"name": "label", "datatype": "BYTES", "shape": [n], "data": names}));
        }
        let c = classes.len();
        let probs: Vec<f32> = answers
            .iter()
            .flat_map(|a| a.probabilities.clone().unwrap_or_default())
            .collect();
        if c > 0 && probs.len() == n * c {
            outputs.push(json!({"name": "probabilities", "datatype": "FP32", "shape": [n, c], "data": probs,
                                "parameters": {"classes": classes.iter().map(|s| &**s).collect::<Vec<_>>()}}));
        }
    }
    serde_json::to_vec(&json!({ "outputs": outputs })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sagemaker_shape() {
        let classes: Vec<Arc<str>> = vec!["B".into(), "M".into()];
        let a = RowAnswer {
            prediction: Prediction::Label(Label::Str("M".into())),
            probabilities: Some(vec![0.25, 0.75]),
        };
        assert_eq!(
            String::from_utf8(encode_sagemaker(&[a], &classes)).unwrap(),
            r#"{"predictions":[{"predicted_label":1,"score":0.75}]}"#
        );
        let v = RowAnswer {
            prediction: Prediction::Value(2.5),
            probabilities: None,
        };
        assert_eq!(
            String::from_utf8(encode_sagemaker(&[v], &[])).unwrap(),
            r#"{"predictions":[{"score":2.5}]}"#
        );
    }

    #[test]
    fn one_row_and_batch() {
        let classes: Vec<Arc<str>> = vec!["no".into(), "yes".into()];
        let a = RowAnswer {
            prediction: Prediction::Label(Label::Str("yes".into())),
            probabilities: Some(vec![0.25, 0.75]),
        };
        assert_eq!(
            String::from_utf8(encode(std::slice::from_ref(&a), &classes, false).to_vec()).unwrap(),
            r#"{"prediction":"yes","probabilities":{"no":0.25,"yes":0.75}}"#
        );
        let v = RowAnswer {
            prediction: Prediction::Value(1.5),
            probabilities: None,
        };
        assert_eq!(
            String::from_utf8(encode(&[v.clone(), v.clone()], &[], true).to_vec()).unwrap(),
            r#"{"predictions":[{"prediction":1.5},{"prediction":1.5}]}"#
        );
        // Past the stack buffer: the same JSON, from a growing one.
        let many = vec![v; 100];
        let big = encode(&many, &[], true);
        assert!(big.len() > SMALL);
        let want = format!(
            "{{\"predictions\":[{}]}}",
            vec![r#"{"prediction":1.5}"#; 100].join(",")
        );
        assert_eq!(String::from_utf8(big.to_vec()).unwrap(), want);
    }
}
