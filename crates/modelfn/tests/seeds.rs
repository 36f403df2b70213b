//! The seed scenarios S1, S2 and S3 served natively, driven with curl over real HTTP
//! against the real binary, and every example answering its sample request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, json, Server};

const S2_MISSING: &str = "'body' must contain values for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints";

#[test]
fn s1_s2_s3_answer_as_the_seeds_do() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for name in ["iris", "breast-cancer", "cancer-linear"] {
        s.deploy(&example(name));
    }
    let invoke = |f: &str| format!("{}/v1/functions/{f}/invoke", s.url);

    // S1: POST and GET with the query string mapped into the event.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &invoke("iris"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["prediction"], "virginica");
    let (code, body) = curl(&[&format!("{}?sl=6.9&sw=3.1&pl=5.1&pw=2.3", invoke("iris"))]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["prediction"], "virginica");
    let p = &json(&body)["probabilities"];
    let total: f64 = ["setosa", "versicolor", "virginica"]
        .iter()
        .map(|c| p[c].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-4, "{p}");

    // S2: the seed's curl line, then the body missing a feature.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &invoke("breast-cancer"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"meanConcavePoints": 0.07951, "worstRadius": 24.86, "worstTexture": 26.58, "worstArea": 1866.0, "worstConcavePoints": 0.01}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let pred = json(&body)["prediction"].as_i64().unwrap();
    assert!(pred == 0 || pred == 1, "{body}");
    let (code, body) = curl(&[
        "-X",
        "POST",
        &invoke("breast-cancer"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"meanConcavePoints": 0.07951, "worstRadius": 24.86, "worstTexture": 26.58, "worstArea": 1866.0}"#,
    ]);
    assert_eq!(code, 400, "{body}");
    assert_eq!(json(&body)["error"]["type"], "InvalidInput");
    assert_eq!(json(&body)["error"]["message"], S2_MISSING);

    // S3: the seed's 30-value row as text/csv.
    let csv = std::fs::read_to_string(example("cancer-linear").join("request.csv")).unwrap();
    let (code, body) = curl(&[
        "-X",
        "POST",
        &invoke("cancer-linear"),
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        csv.trim(),
    ]);
    assert_eq!(code, 200, "{body}");
    let label = json(&body)["prediction"].as_str().unwrap().to_string();
    assert!(label == "B" || label == "M", "{body}");
    // Two rows are a batch, answered in order.
    let two = format!("{}\n{}", csv.trim(), csv.trim());
    let (code, body) = curl(&[
        "-X",
        "POST",
        &invoke("cancer-linear"),
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        &two,
    ]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["predictions"].as_array().unwrap().len(), 2);
}

#[test]
fn every_example_deploys_and_answers_its_sample_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut seen = 0;
    for entry in std::fs::read_dir(common::repo().join("examples")).unwrap() {
        let fdir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(fdir.join("modelfn.toml")) else {
            continue;
        };
        // Examples that need layers or a build are driven by their own tests (process.rs).
        if manifest.contains("layers =") || fdir.join("Cargo.toml").is_file() {
            continue;
        }
        s.deploy(&fdir);
        let expected = std::fs::read_to_string(fdir.join("response.json")).ok();
        let name = fdir.file_name().unwrap().to_str().unwrap().to_string();
        let url = format!("{}/v1/functions/{name}/invoke", s.url);
        for (file, ct) in [
            ("request.json", "application/json"),
            ("request.csv", "text/csv"),
        ] {
            let req = fdir.join(file);
            if req.is_file() {
                let (code, body) = curl(&[
                    "-X",
                    "POST",
                    &url,
                    "-H",
                    &format!("Content-Type: {ct}"),
                    "--data-binary",
                    &format!("@{}", req.display()),
                ]);
                assert_eq!(code, 200, "{name}: {body}");
                match &expected {
                    Some(want) => assert_eq!(json(&body), json(want), "{name}"),
                    None => assert!(json(&body).get("prediction").is_some(), "{name}: {body}"),
                }
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "only {seen} example requests ran");
}
