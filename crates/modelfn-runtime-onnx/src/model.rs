//! One ONNX model: loaded once into a tuned session, its outputs understood once, then run
//! on rows of features.
//!
//! What scikit-learn, XGBoost and LightGBM exports look like, and what is accepted:
//! one tensor input `[N, F]` of float or double; a label output (int64 or string tensor)
//! with a probability output that is either a `[N, C]` float tensor or a ZipMap (a
//! sequence of maps from class to probability); or, for regressors, one float tensor of
//! values `[N]` or `[N, 1]`.

use modelfn_core::ModelSpec;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{DynMapValueType, TensorElementType, TensorRef, ValueType};
use std::path::Path;
use std::sync::Arc;

/// A predicted class or value.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Label(Label),
    Value(f64),
}

/// A class label as the model or the manifest names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Int(i64),
    Str(Arc<str>),
}

/// The answer for one row: the prediction and, for classifiers, one probability per class
/// (in the order of [`LoadedModel::classes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowAnswer {
    pub prediction: Prediction,
    pub probabilities: Option<Vec<f32>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LabelKind {
    Int,
    Str,
    /// A regressor's values.
    Float,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ProbKind {
    Tensor,
    ZipMapInt,
    ZipMapStr,
}

/// How threads are used inside ONNX Runtime.
#[derive(Debug, Clone, Copy)]
pub struct SessionTuning {
    pub intra_threads: usize,
}

impl Default for SessionTuning {
    fn default() -> Self {
        // One thread per session: requests are parallel across sessions and batches, and a
        // spinning pool steals the CPU the HTTP threads need (see BENCHMARKS.md).
        SessionTuning { intra_threads: 1 }
    }
}

/// A model ready to run.
pub struct LoadedModel {
    session: Session,
    input_f64: bool,
    features: usize,
    label_output: String,
    label_kind: LabelKind,
    probs: Option<(String, ProbKind)>,
    /// Class keys as the model gives them (ZipMap keys), to place each probability.
    zipmap_int_keys: Vec<i64>,
    zipmap_str_keys: Vec<String>,
    /// Names of the classes, in probability order (empty for regressors).
    classes: Arc<[Arc<str>]>,
    /// Manifest labels by class index.
    labels: Vec<Arc<str>>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl LoadedModel {
    /// Loads the model, checks it against the manifest and runs it once on a row of zeros.
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "ONNX output types modelfn does not read are refused together, by name"
    )]
    pub fn load(
        env: &ort::environment::Environment,
        path: &Path,
        spec: &ModelSpec,
        tuning: SessionTuning,
    ) -> Result<LoadedModel, String> {
        let session = Session::builder(env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::Level3)?))
            .and_then(|b| Ok(b.with_intra_threads(tuning.intra_threads)?))
            .and_then(|b| Ok(b.with_inter_threads(1)?))
            .and_then(|b| Ok(b.with_intra_op_spinning(false)?))
            .and_then(|b| Ok(b.with_inter_op_spinning(false)?))
            .and_then(|mut b| b.commit_from_file(path))
            .map_err(|e| {
                format!(
                    "the model {} does not load in ONNX Runtime: {e}",
                    file_name(path)
                )
            })?;

        let features = spec.inputs.len();
        let input_f64 = check_input(&session, features)?;
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        let find = |want: &str, what: &str| -> Result<String, String> {
            if outputs.contains(&want) {
                Ok(want.to_string())
            } else {
                Err(format!(
                    "model.{what} = {want:?}: the model has no such output; its outputs are: {}",
                    outputs.join(", ")
                ))
            }
        };
        let label_output = match &spec.label_output {
            Some(name) => find(name, "label_output")?,
            None => outputs
                .first()
                .map(|s| s.to_string())
                .ok_or("the model has no outputs")?,
        };
        let prob_output = match &spec.probability_output {
            Some(name) => Some(find(name, "probability_output")?),
            None => outputs
                .iter()
                .find(|o| **o != label_output)
                .map(|s| s.to_string()),
        };
        let dtype = |name: &str| {
            session
                .outputs()
                .iter()
                .find(|o| o.name() == name)
                .map(|o| o.dtype().clone())
        };
        let label_kind = match dtype(&label_output) {
            Some(ValueType::Tensor { ty: TensorElementType::Int64, .. }) => LabelKind::Int,
            Some(ValueType::Tensor { ty: TensorElementType::String, .. }) => LabelKind::Str,
            Some(ValueType::Tensor { ty: TensorElementType::Float32, .. }) => LabelKind::Float,
            other => {
                return Err(format!(
                    "output '{label_output}' has type {other:?}; modelfn reads labels from int64 or string tensors and values from float tensors"
                ))
            }
        };
        let probs = match prob_output {
            None => None,
            Some(name) => {
                let kind = match dtype(&name) {
                    Some(ValueType::Tensor { ty: TensorElementType::Float32, .. }) => ProbKind::Tensor,
                    Some(ValueType::Sequence(inner)) => match *inner {
                        ValueType::Map { key: TensorElementType::Int64, value: TensorElementType::Float32 } => ProbKind::ZipMapInt,
                        ValueType::Map { key: TensorElementType::String, value: TensorElementType::Float32 } => ProbKind::ZipMapStr,
                        other => return Err(format!("output '{name}' is a sequence of {other:?}; modelfn reads probabilities from a float tensor or a ZipMap")),
                    },
                    other => return Err(format!("output '{name}' has type {other:?}; modelfn reads probabilities from a float tensor or a ZipMap")),
                };
                Some((name, kind))
            }
        };
        if label_kind == LabelKind::Float && probs.is_none() && !spec.labels.is_empty() {
            return Err(
                "model.labels is set but the model is a regressor (one float output)".into(),
            );
        }
        let mut model = LoadedModel {
            session,
            input_f64,
            features,
            label_output,
            label_kind,
            probs,
            zipmap_int_keys: Vec::new(),
            zipmap_str_keys: Vec::new(),
            classes: Arc::from(Vec::new()),
            labels: spec.labels.iter().map(|l| Arc::from(l.as_str())).collect(),
        };
        model.learn_classes()?;
        Ok(model)
    }

    /// Names of the classes, in the order of each answer's probabilities.
    pub fn classes(&self) -> &Arc<[Arc<str>]> {
        &self.classes
    }

    /// How many features a row has.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Runs once on zeros to learn ZipMap keys and the class count, and checks the labels.
    fn learn_classes(&mut self) -> Result<(), String> {
        let zeros = vec![0f32; self.features];
        let Some((name, kind)) = self.probs.clone() else {
            self.run(&zeros, 1)
                .map_err(|e| format!("the model fails on a row of zeros: {e}"))?;
            return Ok(());
        };
        let count;
        {
            let outputs = run_session(&mut self.session, self.input_f64, &zeros, 1, self.features)?;
            let value = &outputs[name.as_str()];
            match kind {
                ProbKind::Tensor => {
                    let (shape, data) = value.try_extract_tensor::<f32>().map_err(err)?;
                    count = if shape.len() == 2 {
                        shape[1] as usize
                    } else {
                        data.len()
                    };
                }
                ProbKind::ZipMapInt => {
                    self.zipmap_int_keys = zipmap_keys(value)?;
                    count = self.zipmap_int_keys.len();
                }
                ProbKind::ZipMapStr => {
                    self.zipmap_str_keys = zipmap_keys(value)?;
                    count = self.zipmap_str_keys.len();
                }
            }
        }
        if !self.labels.is_empty() && self.labels.len() != count {
            return Err(format!(
                "model.labels names {} classes but the model has {count}",
                self.labels.len()
            ));
        }
        if !self.labels.is_empty() && kind == ProbKind::ZipMapInt {
            if let Some(k) = self
                .zipmap_int_keys
                .iter()
                .find(|k| **k < 0 || **k as usize >= self.labels.len())
            {
                return Err(format!(
                    "the model has class {k}, which model.labels cannot name (classes 0 to {})",
                    self.labels.len() - 1
                ));
            }
        }
        self.classes = match kind {
            ProbKind::ZipMapStr => self
                .zipmap_str_keys
                .iter()
                .map(|k| Arc::from(k.as_str()))
                .collect(),
            ProbKind::ZipMapInt if self.labels.is_empty() => self
                .zipmap_int_keys
                .iter()
                .map(|k| Arc::from(k.to_string()))
                .collect(),
            ProbKind::ZipMapInt => self
                .zipmap_int_keys
                .iter()
                .map(|k| self.labels[*k as usize].clone())
                .collect(),
            ProbKind::Tensor if self.labels.is_empty() => {
                (0..count).map(|i| Arc::from(i.to_string())).collect()
            }
            ProbKind::Tensor => self.labels.iter().cloned().collect(),
        };
        self.run(&zeros, 1)
            .map_err(|e| format!("the model fails on a row of zeros: {e}"))?;
        Ok(())
    }

    /// Runs `rows` rows (row-major `values`) and answers each.
    pub fn run(&mut self, values: &[f32], rows: usize) -> Result<Vec<RowAnswer>, String> {
        debug_assert_eq!(values.len(), rows * self.features);
        let outputs = run_session(
            &mut self.session,
            self.input_f64,
            values,
            rows,
            self.features,
        )?;
        let label = &outputs[self.label_output.as_str()];
        let mut answers: Vec<RowAnswer> = Vec::with_capacity(rows);
        match self.label_kind {
            LabelKind::Int => {
                let (_, data) = label.try_extract_tensor::<i64>().map_err(err)?;
                check_len(data.len(), rows, "label")?;
                for &l in &data[..rows] {
                    let prediction = if self.labels.is_empty() {
                        Label::Int(l)
                    } else {
                        let name = usize::try_from(l).ok().and_then(|i| self.labels.get(i)).ok_or_else(|| format!("the model predicted class {l}, which model.labels does not name"))?;
                        Label::Str(name.clone())
                    };
                    answers.push(RowAnswer {
                        prediction: Prediction::Label(prediction),
                        probabilities: None,
                    });
                }
            }
            LabelKind::Str => {
                let (_, data) = label.try_extract_strings().map_err(err)?;
                check_len(data.len(), rows, "label")?;
                for s in data.into_iter().take(rows) {
                    answers.push(RowAnswer {
                        prediction: Prediction::Label(Label::Str(Arc::from(s))),
                        probabilities: None,
                    });
                }
            }
            LabelKind::Float => {
                let (_, data) = label.try_extract_tensor::<f32>().map_err(err)?;
                check_len(data.len(), rows, "value")?;
                let stride = data.len() / rows;
                for r in 0..rows {
                    answers.push(RowAnswer {
                        prediction: Prediction::Value(data[r * stride] as f64),
                        probabilities: None,
                    });
                }
            }
        }
        let Some((name, kind)) = &self.probs else {
            return Ok(answers);
        };
        let value = &outputs[name.as_str()];
        match kind {
            ProbKind::Tensor => {
                let (_, data) = value.try_extract_tensor::<f32>().map_err(err)?;
                check_len(data.len(), rows, "probability")?;
                let c = data.len() / rows;
                for (a, chunk) in answers.iter_mut().zip(data.chunks_exact(c)) {
                    a.probabilities = Some(chunk.to_vec());
                }
            }
            ProbKind::ZipMapInt => zipmap_rows(value, &self.zipmap_int_keys, &mut answers)?,
            ProbKind::ZipMapStr => zipmap_rows(value, &self.zipmap_str_keys, &mut answers)?,
        }
        Ok(answers)
    }
}

/// The class keys of a ZipMap output (a sequence of maps), sorted.
fn zipmap_keys<K>(value: &ort::value::DynValue) -> Result<Vec<K>, String>
where
    K: ort::value::IntoTensorElementType + Clone + std::hash::Hash + Eq + Ord,
{
    let maps = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(err)?;
    let first = maps.first().ok_or("the ZipMap output is empty")?;
    let mut keys: Vec<K> = first
        .try_extract_key_values::<K, f32>()
        .map_err(err)?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    Ok(keys)
}

/// Reads one map of a ZipMap output per answer into its probabilities.
fn zipmap_rows<K>(
    value: &ort::value::DynValue,
    keys: &[K],
    answers: &mut [RowAnswer],
) -> Result<(), String>
where
    K: ort::value::IntoTensorElementType + Clone + std::hash::Hash + Eq,
{
    let maps = value
        .try_extract_sequence::<DynMapValueType>()
        .map_err(err)?;
    check_len(maps.len(), answers.len(), "probability")?;
    for (a, m) in answers.iter_mut().zip(&maps) {
        let kv = m.try_extract_key_values::<K, f32>().map_err(err)?;
        a.probabilities = Some(place(keys, kv));
    }
    Ok(())
}

/// Puts each (class, probability) pair at its class's position.
fn place<K: PartialEq>(keys: &[K], kv: Vec<(K, f32)>) -> Vec<f32> {
    let mut out = vec![0f32; keys.len()];
    for (k, p) in kv {
        if let Some(i) = keys.iter().position(|x| *x == k) {
            out[i] = p;
        }
    }
    out
}

fn check_len(got: usize, rows: usize, what: &str) -> Result<(), String> {
    if got < rows || (rows > 0 && !got.is_multiple_of(rows)) {
        Err(format!(
            "the model's {what} output has {got} values for {rows} rows"
        ))
    } else {
        Ok(())
    }
}

fn run_session<'s>(
    session: &'s mut Session,
    input_f64: bool,
    values: &[f32],
    rows: usize,
    features: usize,
) -> Result<ort::session::SessionOutputs<'s>, String> {
    let shape = [rows, features];
    if input_f64 {
        let wide: Vec<f64> = values.iter().map(|v| *v as f64).collect();
        let t = TensorRef::from_array_view((shape, wide.as_slice())).map_err(err)?;
        session.run(ort::inputs![t]).map_err(err)
    } else {
        let t = TensorRef::from_array_view((shape, values)).map_err(err)?;
        session.run(ort::inputs![t]).map_err(err)
    }
}

/// Checks the model's single input; answers whether it takes doubles.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "ONNX value and element types modelfn does not read are refused together, by name"
)]
fn check_input(session: &Session, features: usize) -> Result<bool, String> {
    let inputs = session.inputs();
    if inputs.len() != 1 {
        let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
        return Err(format!(
            "modelfn serves models with one tensor input of shape [N, features]; this model has {} inputs ({})",
            inputs.len(),
            names.join(", ")
        ));
    }
    let input = &inputs[0];
    match input.dtype() {
        ValueType::Tensor { ty, shape, .. } => {
            let f64_input = match ty {
                TensorElementType::Float32 => false,
                TensorElementType::Float64 => true,
                other => {
                    return Err(format!(
                    "the model's input '{}' is a tensor of {other}; modelfn feeds float or double",
                    input.name()
                ))
                }
            };
            if shape.len() == 2 && shape[1] > 0 && shape[1] as usize != features {
                return Err(format!(
                    "the model takes {} features but model.inputs names {features}",
                    shape[1]
                ));
            }
            Ok(f64_input)
        }
        other => Err(format!(
            "the model's input '{}' is {other:?}; modelfn feeds a tensor [N, features]",
            input.name()
        )),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
