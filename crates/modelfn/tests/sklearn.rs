//! `runtime = "sklearn"`: seed 003's `model.joblib` deploys as a native ONNX function and
//! answers S1; on 1,000 random rows its labels equal scikit-learn's own; a model whose
//! ONNX conversion does not answer alike is refused with the rows that differ; an
//! estimator the converter does not know is refused with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, json, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The converter environment's Python (made by the first `runtime = "sklearn"` deploy).
fn converter_python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(|x| PathBuf::from(x).join("modelfn"))
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/modelfn"));
    std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sklearn-converter-"))
                && p.join("ready").is_file()
        })
        .map(|p| p.join("bin/python"))
        .expect("the converter environment")
}

fn python(py: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn seed_003s_joblib_is_served_natively_with_scikit_learns_labels() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let pkg = example("iris-sklearn");
    let (ok, out, err) = s.cli(&["deploy", pkg.to_str().unwrap()]);
    assert!(ok, "{out} {err}");
    assert!(
        err.contains("RandomForestClassifier") && err.contains("labels equal"),
        "{err}"
    );
    // S1, natively.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/iris-sklearn/invoke", s.url),
        "--data-binary",
        &format!("@{}", pkg.join("request.json").display()),
    ]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["prediction"], "virginica");
    let (_, describe, _) = s.cli(&["describe", "iris-sklearn"]);
    assert!(
        describe.contains("runtime               onnx"),
        "{describe}"
    );
    assert!(
        describe.contains("converted from        model.joblib (sha256:"),
        "{describe}"
    );

    // 1,000 random rows: scikit-learn's labels, and modelfn's in one batch.
    let py = converter_python();
    let rows_file = dir.path().join("rows.json");
    let want = python(
        &py,
        "import sys, json, joblib, numpy as np\n\
         m = joblib.load(sys.argv[1])\n\
         rows = np.random.default_rng(7).uniform([4, 2, 1, 0], [8, 4.5, 7, 2.6], size=(1000, 4)).astype(np.float32)\n\
         json.dump(rows.tolist(), open(sys.argv[2], 'w'))\n\
         names = ['setosa', 'versicolor', 'virginica']\n\
         print(json.dumps([names[int(c)] for c in m.predict(rows)]))",
        &[
            pkg.join("model.joblib").to_str().unwrap(),
            rows_file.to_str().unwrap(),
        ],
    );
    let want: Vec<String> = serde_json::from_str(want.trim()).unwrap();
    let rows: serde_json::Value = json(&std::fs::read_to_string(&rows_file).unwrap());
    let event = dir.path().join("event.json");
    std::fs::write(&event, serde_json::json!({ "instances": rows }).to_string()).unwrap();
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/iris-sklearn/invoke", s.url),
        "--data-binary",
        &format!("@{}", event.display()),
    ]);
    assert_eq!(code, 200, "{}", &body[..body.len().min(300)]);
    let got: Vec<String> = json(&body)["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prediction"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.len(), 1000);
    let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "labels differing from scikit-learn's");
}

#[test]
fn a_model_whose_conversion_answers_otherwise_or_cannot_be_converted_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // The environment exists once a sklearn package was converted.
    let (ok, _, err) = s.cli(&["deploy", example("iris-sklearn").to_str().unwrap()]);
    assert!(ok, "{err}");
    let py = converter_python();

    // A logistic regression whose terms cancel: float32 (ONNX) and float64
    // (scikit-learn) disagree by more than 1e-5 on rows near each other's features.
    let pkg = dir.path().join("doctored");
    std::fs::create_dir(&pkg).unwrap();
    python(
        &py,
        "import sys, joblib, numpy as np\n\
         from sklearn.linear_model import LogisticRegression\n\
         X = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]], dtype=float)\n\
         m = LogisticRegression().fit(X, [0, 1, 0, 1])\n\
         m.coef_ = np.array([[1e4, -1e4, 1.0]]); m.intercept_ = np.array([0.0])\n\
         joblib.dump(m, sys.argv[1] + '/model.joblib')\n\
         a = np.linspace(0.9, 1.1, 200)\n\
         np.savetxt(sys.argv[1] + '/rows.csv', np.c_[a, a - 1e-4, np.full(200, 0.5)], delimiter=',')",
        &[pkg.to_str().unwrap()],
    );
    std::fs::write(
        pkg.join("modelfn.toml"),
        "name = \"doctored\"\nruntime = \"sklearn\"\n[model]\nfile = \"model.joblib\"\ninputs = [\"a\", \"b\", \"c\"]\nsample_rows = \"rows.csv\"\n",
    )
    .unwrap();
    let (ok, _, err) = s.cli(&["deploy", pkg.to_str().unwrap()]);
    assert!(!ok, "a model that breaks parity was deployed");
    assert!(
        err.contains("model.joblib is not deployed")
            && err.contains("answer differently")
            && err.contains("for example"),
        "{err}"
    );
    let (_, list, _) = s.cli(&["list"]);
    assert!(!list.contains("doctored"), "{list}");

    // An estimator skl2onnx does not know: refused with its reason, pointing to python3.
    let odd = dir.path().join("odd.joblib");
    python(
        &py,
        "import sys, joblib, numpy as np\n\
         from sklearn.kernel_ridge import KernelRidge\n\
         X = np.random.default_rng(1).random((20, 2))\n\
         joblib.dump(KernelRidge().fit(X, X[:, 0]), sys.argv[1])",
        &[odd.to_str().unwrap()],
    );
    let (ok, _, err) = s.cli(&[
        "deploy",
        "--from-sklearn",
        odd.to_str().unwrap(),
        "--name",
        "odd",
        "--inputs",
        "a,b",
    ]);
    assert!(!ok);
    assert!(
        err.contains("odd.joblib is not deployed: skl2onnx cannot convert KernelRidge")
            && err.contains("Unable to find a shape calculator")
            && err.contains("runtime = \"python3\""),
        "{err}"
    );
}

/// Deploys `pickle` with `--from-sklearn` under `name` (iris's four inputs and names).
fn deploy_pickle(s: &Server, pickle: &Path, name: &str) -> (bool, String) {
    let (ok, _, err) = s.cli(&[
        "deploy",
        "--from-sklearn",
        pickle.to_str().unwrap(),
        "--name",
        name,
        "--inputs",
        "sl,sw,pl,pw",
        "--labels",
        "setosa,versicolor,virginica",
    ]);
    (ok, err)
}

#[test]
fn xgboost_and_lightgbm_pickles_are_converted_with_their_converters() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let (ok, _, err) = s.cli(&["deploy", example("iris-sklearn").to_str().unwrap()]);
    assert!(ok, "{err}");
    let py = converter_python();

    // Pickles naming the two libraries, which the converter lacks at first: each deploy
    // installs its converter (pinned), then loads the pickle, which holds no model.
    let work = dir.path();
    python(
        &py,
        "import sys, types, joblib\n\
         for mod, cls in (('xgboost.sklearn', 'XGBClassifier'), ('lightgbm.sklearn', 'LGBMClassifier')):\n\
         \x20   top = mod.split('.')[0]\n\
         \x20   sys.modules[top] = types.ModuleType(top); sys.modules[mod] = types.ModuleType(mod)\n\
         \x20   c = type(cls, (), {'__module__': mod}); setattr(sys.modules[mod], cls, c)\n\
         \x20   joblib.dump(c(), sys.argv[1] + '/' + top + '-empty.joblib')",
        &[work.to_str().unwrap()],
    );
    for lib in ["xgboost", "lightgbm"] {
        let (ok, err) = deploy_pickle(&s, &work.join(format!("{lib}-empty.joblib")), "empty");
        assert!(!ok, "an empty {lib} estimator was deployed");
        assert!(
            err.contains(&format!(
                "installing the {}",
                if lib == "xgboost" {
                    "XGBoost"
                } else {
                    "LightGBM"
                }
            )) || err.contains("is not deployed"),
            "{err}"
        );
        let venv = py.parent().unwrap().parent().unwrap();
        assert!(venv.join(format!("ready-{lib}")).is_file(), "{err}");
    }

    // Real models, trained with the libraries now installed: served natively, with the
    // libraries' own labels on every row.
    let want = python(
        &py,
        "import sys, json, joblib, numpy as np, xgboost, lightgbm\n\
         from sklearn.datasets import load_iris\n\
         X, y = load_iris(return_X_y=True)\n\
         x = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)\n\
         l = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, y)\n\
         joblib.dump(x, sys.argv[1] + '/xgb.joblib'); joblib.dump(l, sys.argv[1] + '/lgbm.joblib')\n\
         rows = np.random.default_rng(3).uniform([4, 2, 1, 0], [8, 4.5, 7, 2.6], size=(300, 4)).astype(np.float32)\n\
         names = ['setosa', 'versicolor', 'virginica']\n\
         print(json.dumps({'rows': rows.tolist(), 'xgb': [names[int(c)] for c in x.predict(rows)],\n\
         \x20                 'lgbm': [names[int(c)] for c in l.predict(rows)]}))",
        &[work.to_str().unwrap()],
    );
    let want = json(want.trim());
    let event = work.join("event.json");
    std::fs::write(
        &event,
        serde_json::json!({ "instances": want["rows"] }).to_string(),
    )
    .unwrap();
    for (lib, file, name) in [
        ("xgboost", "xgb.joblib", "xgb-iris"),
        ("lightgbm", "lgbm.joblib", "lgbm-iris"),
    ] {
        let (ok, err) = deploy_pickle(&s, &work.join(file), name);
        assert!(ok, "{err}");
        assert!(
            err.contains("onnxmltools") && err.contains(lib) && err.contains("labels equal"),
            "{err}"
        );
        let (code, body) = curl(&[
            "-X",
            "POST",
            &format!("{}/v1/functions/{name}/invoke", s.url),
            "--data-binary",
            &format!("@{}", event.display()),
        ]);
        assert_eq!(code, 200, "{}", &body[..body.len().min(300)]);
        let got: Vec<serde_json::Value> = json(&body)["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["prediction"].clone())
            .collect();
        let key = if lib == "xgboost" { "xgb" } else { "lgbm" };
        assert_eq!(&serde_json::Value::from(got), &want[key], "{name}");
    }
}
