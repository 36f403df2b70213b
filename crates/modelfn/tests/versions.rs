//! A deploy while calls that name a version run: every door resolves the version once and
//! runs exactly what it checked; older versions keep serving beside the latest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, example, header, invoke as post, json, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn versions_checked_are_the_versions_that_run_while_deploys_happen() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Unsigned Lambda calls keep the test about versions, not signatures.
    let s = Server::start_unsigned(dir.path());
    let pkg = work.path().join("iris");
    copy_dir(&example("iris"), &pkg);
    s.deploy(&pkg);

    let stop = Arc::new(AtomicBool::new(false));
    let url = s.url.clone();
    let row = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
    let oip_row = r#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.9, 3.1, 5.1, 2.3]}]}"#;
    let callers: Vec<_> = (0..2)
        .map(|which| {
            let (stop, url) = (stop.clone(), url.clone());
            std::thread::spawn(move || {
                // Alternately: the latest (which only moves forward), and an explicit
                // older version, which keeps serving and must be exactly what runs.
                let (mut calls, mut latest_seen, mut i) = (0u64, 1u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let asked = (i % 2 == 0).then(|| 1 + i / 2 % latest_seen);
                    let (code, headers, body) = match (which, asked) {
                        (0, Some(v)) => post(
                            &format!("{url}/2015-03-31/functions/iris/invocations?Qualifier={v}"),
                            row,
                        ),
                        (0, None) => post(
                            &format!(
                                "{url}/2015-03-31/functions/iris/invocations?Qualifier=$LATEST"
                            ),
                            row,
                        ),
                        (_, Some(v)) => {
                            post(&format!("{url}/v2/models/iris/versions/{v}/infer"), oip_row)
                        }
                        (_, None) => post(&format!("{url}/v2/models/iris/infer"), oip_row),
                    };
                    assert_eq!(code, 200, "{asked:?}: {body}");
                    let ran: u64 = if which == 0 {
                        header(&headers, "x-amz-executed-version")
                            .unwrap()
                            .parse()
                            .unwrap()
                    } else {
                        json(&body)["model_version"]
                            .as_str()
                            .unwrap()
                            .parse()
                            .unwrap()
                    };
                    match asked {
                        Some(v) => assert_eq!(ran, v, "asked for version {v}: {body}"),
                        None => {
                            assert!(
                                ran >= latest_seen,
                                "the latest went back: {ran} < {latest_seen}"
                            );
                            latest_seen = ran;
                        }
                    }
                    calls += 1;
                }
                (calls, latest_seen)
            })
        })
        .collect();
    // Five new versions while the callers run.
    for i in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let m = std::fs::read_to_string(pkg.join("modelfn.toml")).unwrap();
        let m = match m.find("description = ") {
            Some(_) => m
                .lines()
                .map(|l| {
                    if l.starts_with("description = ") {
                        format!("description = \"v{}\"", i + 2)
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            None => format!("description = \"v{}\"\n{m}", i + 2),
        };
        std::fs::write(pkg.join("modelfn.toml"), m).unwrap();
        s.deploy(&pkg);
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        let (calls, latest_seen) = c.join().unwrap();
        assert!(calls > 0, "no call ran");
        assert!(latest_seen > 1, "the callers saw no new version");
    }
}

#[test]
fn every_door_reads_a_qualifier_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    // Unsigned Lambda calls keep the test about versions, not signatures.
    let s = Server::start_unsigned(dir.path());
    s.deploy(&example("iris"));
    let row = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
    let url = &s.url;
    // The native API takes NAME:QUALIFIER too.
    for ok in ["iris", "iris:1", "iris:$LATEST"] {
        let (code, headers, body) = post(&format!("{url}/v1/functions/{ok}/invoke"), row);
        assert_eq!(code, 200, "{ok}: {body}");
        assert_eq!(header(&headers, "x-modelfn-version"), Some("1"), "{ok}");
    }
    let (code, _, body) = post(&format!("{url}/v1/functions/iris:7/invoke"), row);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no version 7"), "{body}");
    let (code, _, body) = post(&format!("{url}/v1/functions/iris:prod/invoke"), row);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no alias 'prod'"), "{body}");
    // Lambda: the same words inside its own error shape.
    let (code, headers, body) = post(
        &format!("{url}/2015-03-31/functions/iris/invocations?Qualifier=7"),
        row,
    );
    assert_eq!(code, 404, "{body}");
    // (The test client lowercases the header block.)
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        Some("resourcenotfoundexception")
    );
    assert!(body.contains("no version 7"), "{body}");
    // OIP: versions in the path.
    let oip = r#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.9, 3.1, 5.1, 2.3]}]}"#;
    let (code, _, body) = post(&format!("{url}/v2/models/iris/versions/7/infer"), oip);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no version 7"), "{body}");
}
