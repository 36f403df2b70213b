//! The model store end to end: revisions put and listed with digests; functions that
//! follow a model switch when a revision passes their test event, pinned ones do not;
//! a corrupt file or a model with other inputs is refused and the old one keeps serving;
//! rollback; a Python function reads its model at `MODELFN_MODEL_PATH`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, example, invoke as post, json, Server};
use std::path::Path;

const ROW: &str = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;

/// iris's package with its model taken from the store instead of the package.
fn follower(work: &Path, name: &str, model_ref: &str) -> std::path::PathBuf {
    let pkg = work.join(name);
    copy_dir(&example("iris"), &pkg);
    std::fs::remove_file(pkg.join("model.onnx")).unwrap();
    let manifest = std::fs::read_to_string(pkg.join("modelfn.toml"))
        .unwrap()
        .replace("name = \"iris\"", &format!("name = \"{name}\""))
        .replace(
            "file = \"model.onnx\"",
            &format!("file = \"{model_ref}\"\ntest_event = \"request.json\""),
        );
    std::fs::write(pkg.join("modelfn.toml"), manifest).unwrap();
    pkg
}

fn answer(s: &Server, function: &str) -> String {
    let (code, _, body) = post(&format!("{}/v1/functions/{function}/invoke", s.url), ROW);
    assert_eq!(code, 200, "{body}");
    body
}

fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn model_revisions_switch_followers_only_when_they_work() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let forest = example("iris").join("model.onnx");
    let lightgbm = example("lightgbm-iris").join("model.onnx");

    // A function naming a model that is not stored is refused, naming the command.
    let pkg = follower(work.path(), "flower", "store:iris-model");
    let (ok, _, err) = s.cli(&["deploy", pkg.to_str().unwrap()]);
    assert!(!ok && err.contains("modelfn model put iris-model"), "{err}");

    let (ok, out, err) = s.cli(&["model", "put", "iris-model", forest.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("revision 1"), "{out}");
    s.deploy(&pkg);
    s.deploy(&follower(work.path(), "pinned", "store:iris-model@1"));
    s.deploy(&example("iris"));
    s.deploy(&example("lightgbm-iris"));
    let forest_answer = answer(&s, "iris");
    let lightgbm_answer = answer(&s, "lightgbm-iris");
    assert_ne!(forest_answer, lightgbm_answer);
    assert_eq!(answer(&s, "flower"), forest_answer);

    // A new revision: the follower switches, the pinned function does not.
    let (ok, out, err) = s.cli(&[
        "model",
        "put",
        "iris-model",
        lightgbm.to_str().unwrap(),
        "--description",
        "LightGBM challenger",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("revision 2") && out.contains("switched: flower:1"),
        "{out}"
    );
    assert_eq!(answer(&s, "flower"), lightgbm_answer);
    assert_eq!(answer(&s, "pinned"), forest_answer);

    // The same file again changes nothing.
    let (ok, out, err) = s.cli(&["model", "put", "iris-model", lightgbm.to_str().unwrap()]);
    assert!(ok && out.contains("already current"), "{out} {err}");

    // A corrupt file, and a model with other inputs (breast cancer's five features), are
    // refused with the reason; the current revision keeps serving.
    let corrupt = work.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"this is not an ONNX model").unwrap();
    let (ok, _, err) = s.cli(&["model", "put", "iris-model", corrupt.to_str().unwrap()]);
    assert!(
        !ok && err.contains("flower:1") && err.contains("does not load"),
        "{err}"
    );
    let other = example("breast-cancer").join("model.onnx");
    let (ok, _, err) = s.cli(&["model", "put", "iris-model", other.to_str().unwrap()]);
    assert!(!ok && err.contains("flower:1"), "{err}");
    assert_eq!(answer(&s, "flower"), lightgbm_answer);

    // The list has the two good revisions with their digests, and who follows.
    let (ok, out, err) = s.cli(&["model", "list", "iris-model"]);
    assert!(ok, "{err}");
    assert!(out.contains(&sha256_of(&forest)[..12]), "{out}");
    assert!(out.contains(&sha256_of(&lightgbm)[..12]), "{out}");
    assert!(
        out.contains("2 (current)") && out.contains("flower"),
        "{out}"
    );
    assert!(!out.contains("\niris-model  3"), "{out}");
    let (ok, out, _) = s.cli(&["model", "list", "iris-model", "--json"]);
    assert!(ok);
    assert_eq!(
        json(&out)[0]["revisions"].as_array().unwrap().len(),
        2,
        "{out}"
    );

    // Rollback: back to revision 1 for the follower.
    let (ok, out, err) = s.cli(&["model", "rollback", "iris-model"]);
    assert!(ok && out.contains("revision 1"), "{out} {err}");
    assert_eq!(answer(&s, "flower"), forest_answer);
    let (ok, _, err) = s.cli(&["model", "rollback", "iris-model"]);
    assert!(!ok && err.contains("no revision before 1"), "{err}");
    let (ok, _, err) = s.cli(&["model", "rollback", "nope"]);
    assert!(!ok && err.contains("not in the model store"), "{err}");

    // After a restart the follower serves the current revision.
    drop(s);
    let s = Server::start(dir.path());
    assert_eq!(answer(&s, "flower"), forest_answer);
    assert_eq!(answer(&s, "pinned"), forest_answer);
}

#[test]
fn a_python_function_reads_its_model_at_modelfn_model_path() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let pkg = work.path().join("reader");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("modelfn.toml"),
        "name = \"reader\"\nruntime = \"python3\"\nhandler = \"lambda_function.lambda_handler\"\n\n[model]\nfile = \"store:blob\"\n",
    )
    .unwrap();
    // Loads its model once, at init, as a Lambda handler would.
    std::fs::write(
        pkg.join("lambda_function.py"),
        "import hashlib, os\n\
         PATH = os.environ['MODELFN_MODEL_PATH']\n\
         DIGEST = hashlib.sha256(open(PATH, 'rb').read()).hexdigest()\n\
         def writable():\n\
         \x20   try:\n\
         \x20       open(PATH, 'ab').close()\n\
         \x20       return True\n\
         \x20   except OSError:\n\
         \x20       return False\n\
         def lambda_handler(event, context):\n\
         \x20   return {'path': PATH, 'sha256': DIGEST, 'revision': os.environ['MODELFN_MODEL_REVISION'], 'writable': writable()}\n",
    )
    .unwrap();
    let one = work.path().join("one.bin");
    let two = work.path().join("two.bin");
    std::fs::write(&one, b"first model bytes").unwrap();
    std::fs::write(&two, b"second model bytes").unwrap();
    let (ok, _, err) = s.cli(&["model", "put", "blob", one.to_str().unwrap()]);
    assert!(ok, "{err}");
    s.deploy(&pkg);
    let got = json(&answer(&s, "reader"));
    assert_eq!(got["path"], "/var/model/blob");
    assert_eq!(got["sha256"], sha256_of(&one));
    assert_eq!(got["revision"], "1");
    let (ok, out, err) = s.cli(&["model", "put", "blob", two.to_str().unwrap()]);
    assert!(ok && out.contains("switched: reader:1"), "{out} {err}");
    let got = json(&answer(&s, "reader"));
    assert_eq!(got["sha256"], sha256_of(&two));
    assert_eq!(got["revision"], "2");
    // The file cannot be written from inside.
    assert_eq!(got["writable"], false, "{got}");
}
