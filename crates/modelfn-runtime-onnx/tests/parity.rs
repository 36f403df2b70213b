//! Every example model (and every export-format fixture) gives onnxruntime's own answers,
//! as recorded by scripts/make-models.py: labels equal, probabilities within 1e-5, row by
//! row and as one batch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_core::{Manifest, ModelSpec};
use modelfn_runtime_onnx::model::SessionTuning;
use modelfn_runtime_onnx::{Label, LibraryConfig, LoadedModel, OrtLibrary, Prediction, RowAnswer};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn library() -> OrtLibrary {
    let cfg = LibraryConfig {
        path: std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
        data_dir: None,
        allow_pip: true,
        ..Default::default()
    };
    OrtLibrary::start(&cfg).expect("ONNX Runtime must be available for the parity tests")
}

/// The model directories with references: examples/* and tests/models/*.
fn model_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for parent in ["examples", "tests/models"] {
        for e in std::fs::read_dir(root().join(parent)).unwrap() {
            let p = e.unwrap().path();
            if p.join("references.json").is_file() && p.join("model.onnx").is_file() {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    dirs
}

fn spec_for(dir: &Path, reference: &Value) -> ModelSpec {
    let manifest = dir.join("modelfn.toml");
    if manifest.is_file() {
        let m = Manifest::from_toml(&std::fs::read_to_string(manifest).unwrap()).unwrap();
        return m.model.unwrap();
    }
    ModelSpec {
        file: "model.onnx".into(),
        inputs: reference["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        labels: vec![],
        label_output: None,
        probability_output: None,
        test_event: None,
        source: None,
    }
}

fn check(
    dir: &Path,
    model: &LoadedModel,
    spec: &ModelSpec,
    reference: &Value,
    i: usize,
    got: &RowAnswer,
) {
    let at = format!("{} row {i}", dir.display());
    if let Some(values) = reference.get("values") {
        let want = values[i].as_f64().unwrap();
        let Prediction::Value(v) = got.prediction else {
            panic!("{at}: expected a value, got {:?}", got.prediction)
        };
        assert!(
            (v - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{at}: value {v} != {want}"
        );
        return;
    }
    let want_label = &reference["labels"][i];
    let want: Label = match want_label {
        Value::Number(n) if !spec.labels.is_empty() => {
            Label::Str(spec.labels[n.as_i64().unwrap() as usize].as_str().into())
        }
        Value::Number(n) => Label::Int(n.as_i64().unwrap()),
        Value::String(s) => Label::Str(s.as_str().into()),
        other @ (Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_)) => {
            panic!("{at}: reference label {other}")
        }
    };
    assert_eq!(got.prediction, Prediction::Label(want), "{at}");
    let want_p: Vec<f64> = reference["probabilities"][i]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got_p = got.probabilities.as_ref().expect("probabilities");
    assert_eq!(got_p.len(), want_p.len(), "{at}: class count");
    assert_eq!(model.classes().len(), want_p.len(), "{at}: class names");
    for (g, w) in got_p.iter().zip(&want_p) {
        assert!(
            (*g as f64 - w).abs() <= 1e-5,
            "{at}: probabilities {got_p:?} != {want_p:?}"
        );
    }
}

#[test]
fn every_model_matches_its_references() {
    let lib = library();
    let dirs = model_dirs();
    assert!(
        dirs.len() >= 9,
        "expected the example models and fixtures, found {dirs:?}"
    );
    for dir in dirs {
        let reference: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("references.json")).unwrap())
                .unwrap();
        let spec = spec_for(&dir, &reference);
        let mut model = LoadedModel::load(
            &lib.environment,
            &dir.join("model.onnx"),
            &spec,
            SessionTuning::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let rows: Vec<Vec<f32>> = reference["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect();
        assert!(!rows.is_empty());
        for (i, row) in rows.iter().enumerate() {
            let got = model.run(row, 1).unwrap();
            assert_eq!(got.len(), 1);
            check(&dir, &model, &spec, &reference, i, &got[0]);
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let batch = model.run(&flat, rows.len()).unwrap();
        assert_eq!(batch.len(), rows.len());
        for (i, got) in batch.iter().enumerate() {
            check(&dir, &model, &spec, &reference, i, got);
        }
    }
}

#[test]
fn a_model_that_disagrees_with_its_manifest_is_refused() {
    let lib = library();
    let iris = root().join("examples/iris/model.onnx");
    let mut spec = ModelSpec {
        file: "model.onnx".into(),
        inputs: vec!["a".into(), "b".into()],
        labels: vec![],
        label_output: None,
        probability_output: None,
        test_event: None,
        source: None,
    };
    let e = LoadedModel::load(&lib.environment, &iris, &spec, SessionTuning::default())
        .err()
        .unwrap();
    assert_eq!(e, "the model takes 4 features but model.inputs names 2");
    spec.inputs = vec!["sl".into(), "sw".into(), "pl".into(), "pw".into()];
    spec.labels = vec!["only-one".into(), "two".into()];
    let e = LoadedModel::load(&lib.environment, &iris, &spec, SessionTuning::default())
        .err()
        .unwrap();
    assert_eq!(e, "model.labels names 2 classes but the model has 3");
    spec.labels.clear();
    spec.probability_output = Some("nope".into());
    let e = LoadedModel::load(&lib.environment, &iris, &spec, SessionTuning::default())
        .err()
        .unwrap();
    assert!(
        e.contains("no such output; its outputs are: output_label, output_probability"),
        "{e}"
    );
    let garbage = std::env::temp_dir().join(format!("modelfn-garbage-{}.onnx", std::process::id()));
    std::fs::write(&garbage, b"this is not a model").unwrap();
    spec.probability_output = None;
    let e = LoadedModel::load(&lib.environment, &garbage, &spec, SessionTuning::default())
        .err()
        .unwrap();
    let _ = std::fs::remove_file(&garbage);
    assert!(e.starts_with("the model modelfn-garbage"), "{e}");
}
