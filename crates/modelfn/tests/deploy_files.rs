//! The files for running modelfn elsewhere: the Kubernetes manifests validate against
//! Kubernetes' own schemas (`kubernetes-validate`, strict: no unknown fields), a broken
//! one does not, and the Dockerfile installs the ONNX Runtime modelfn is built against.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;

fn manifests() -> Vec<PathBuf> {
    let dir = common::repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs kubernetes-validate on `files`; answers whether they passed, and what it said.
fn validate(files: &[PathBuf]) -> (bool, String) {
    let bin = common::client_python()
        .parent()
        .unwrap()
        .join("kubernetes-validate");
    let out = Command::new(bin)
        .args(["--strict", "-k", "1.31.0"])
        .args(files)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_kubernetes_manifests_validate() {
    let files = manifests();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "deployment.yaml",
            "hpa.yaml",
            "secret.example.yaml",
            "service.yaml"
        ]
    );
    let (ok, said) = validate(&files);
    assert!(ok, "{said}");
    assert_eq!(said.matches("passed").count(), 4, "{said}");
    // The validator does refuse: a field misspelled in a copy of the Deployment.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("deployment.yaml");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(&bad, text.replace("readinessProbe:", "readynessProbe:")).unwrap();
    let (ok, said) = validate(&[bad]);
    assert!(!ok && said.contains("readynessProbe"), "{said}");
}

#[test]
fn the_dockerfile_installs_the_onnx_runtime_modelfn_uses() {
    let docker = std::fs::read_to_string(common::repo().join("Dockerfile")).unwrap();
    let want = format!(
        "onnxruntime=={}",
        modelfn_runtime_onnx::library::ORT_VERSION
    );
    assert!(docker.contains(&want), "the Dockerfile does not pin {want}");
    for needed in [
        "bubblewrap",
        "python3",
        "util-linux",
        "ORT_DYLIB_PATH",
        "--locked",
    ] {
        assert!(docker.contains(needed), "the Dockerfile lacks {needed}");
    }
}
