//! Serverless execution end to end: `modelfn config` applied without a restart, scale to
//! zero after the keep-alive, provisioned instances, 429 with Retry-After at the
//! concurrency limit, and dynamic batching that answers every caller with its own row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, header, invoke, json, Server};
use std::time::Duration;

#[test]
fn keep_alive_scales_to_zero_and_provisioned_instances_stay_warm() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("addfive"));
    s.deploy(&example("iris"));
    for f in ["addfive", "iris"] {
        let (ok, _, err) = s.cli(&["config", f, "--keep-alive", "1s"]);
        assert!(ok, "{err}");
        let url = format!("{}/v1/functions/{f}/invoke", s.url);
        let event = if f == "iris" {
            "[6.9, 3.1, 5.1, 2.3]"
        } else {
            r#"{"num": "1"}"#
        };
        let (_, h, _) = invoke(&url, event);
        assert_eq!(header(&h, "x-modelfn-cold-start"), Some("true"));
        let (_, h, _) = invoke(&url, event);
        assert_eq!(header(&h, "x-modelfn-cold-start"), Some("false"));
        std::thread::sleep(Duration::from_millis(2600));
        let (_, out, _) = s.cli(&["describe", f, "--json"]);
        let st = &json(&out)["stats"];
        assert_eq!(
            (st["state"].as_str(), st["instances"].as_u64()),
            (Some("cold"), Some(0)),
            "{f}: scaled to zero: {out}"
        );
        let (_, h, _) = invoke(&url, event);
        assert_eq!(
            header(&h, "x-modelfn-cold-start"),
            Some("true"),
            "{f}: a cold start after scale to zero"
        );
    }
    // Provisioned concurrency: started at once, kept past the keep-alive, never cold.
    let (ok, out, err) = s.cli(&[
        "config",
        "addfive",
        "--provisioned",
        "2",
        "--keep-alive",
        "1s",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("provisioned") && out.contains("2"), "{out}");
    std::thread::sleep(Duration::from_millis(2600));
    let (_, out, _) = s.cli(&["describe", "addfive", "--json"]);
    let d = json(&out);
    assert_eq!(d["scaling"]["provisioned_concurrency"], 2);
    assert_eq!(d["scaling"]["keep_alive"], "1s");
    assert_eq!(d["stats"]["provisioned_instances"], 2, "{out}");
    let url = format!("{}/v1/functions/addfive/invoke", s.url);
    let (_, h, body) = invoke(&url, r#"{"num": "37"}"#);
    assert_eq!(
        (body.as_str(), header(&h, "x-modelfn-cold-start")),
        ("42", Some("false"))
    );
    // Bad settings are refused with the reason.
    let (ok, _, err) = s.cli(&["config", "addfive", "--reserved-concurrency", "1"]);
    assert!(
        !ok && err.contains("provisioned_concurrency = 2 is more than reserved_concurrency = 1"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&["config", "addfive", "--keep-alive", "soon"]);
    assert!(!ok && err.contains("not a duration"), "{err}");
}

#[test]
fn reserved_concurrency_zero_throttles_with_429_and_retry_after_until_raised() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("addfive"));
    let url = format!("{}/v1/functions/addfive/invoke", s.url);
    let (ok, _, err) = s.cli(&["config", "addfive", "--reserved-concurrency", "0"]);
    assert!(ok, "{err}");
    let (code, h, body) = invoke(&url, r#"{"num": "1"}"#);
    assert_eq!(code, 429, "{body}");
    assert_eq!(json(&body)["error"]["type"], "TooManyRequestsException");
    assert_eq!(header(&h, "retry-after"), Some("1"));
    let (_, out, _) = s.cli(&["describe", "addfive", "--json"]);
    assert_eq!(json(&out)["stats"]["throttles"], 1);
    // Applied without a restart, both ways.
    assert!(
        s.cli(&["config", "addfive", "--reserved-concurrency", "5"])
            .0
    );
    let (code, _, body) = invoke(&url, r#"{"num": "1"}"#);
    assert_eq!((code, body.as_str()), (200, "6"));
}

#[test]
fn batching_answers_every_caller_with_its_own_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let (ok, _, err) = s.cli(&["config", "iris", "--max-delay", "20ms", "--max-batch", "16"]);
    assert!(ok, "{err}");
    let refs = json(&std::fs::read_to_string(example("iris").join("references.json")).unwrap());
    let labels = ["setosa", "versicolor", "virginica"];
    let url = format!("{}/v1/functions/iris/invoke", s.url);
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let row = refs["rows"][i].clone();
            let want = labels[refs["labels"][i].as_u64().unwrap() as usize];
            let url = url.clone();
            std::thread::spawn(move || {
                let (code, body) = curl(&[
                    "-X",
                    "POST",
                    &url,
                    "-H",
                    "Content-Type: application/json",
                    "-d",
                    &row.to_string(),
                ]);
                assert_eq!(code, 200, "{body}");
                assert_eq!(json(&body)["prediction"], want, "row {i}: {row}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
