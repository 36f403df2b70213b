//! A function's `[async]` table: its own attempts, success and failure destinations that
//! receive Lambda's destination record, and a byte budget past which new events are
//! refused with 429 until the queue drains.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::events::{admin, server, submit, wait_for};
use common::{copy_dir, curl, json, Server};
use std::path::Path;
use std::time::{Duration, Instant};

/// `behaviours` deployed as `scorer` with `table` appended to its manifest.
fn scorer(s: &Server, dir: &Path, table: &str) {
    let pkg = dir.join("scorer");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours"),
        &pkg,
    );
    let manifest = std::fs::read_to_string(pkg.join("modelfn.toml")).unwrap();
    let manifest = manifest.replace("name = \"behaviours\"", "name = \"scorer\"") + table;
    std::fs::write(pkg.join("modelfn.toml"), manifest).unwrap();
    s.deploy(&pkg);
}

/// The records the audit function printed, once there are `n`.
fn audited(s: &Server, n: usize) -> Vec<serde_json::Value> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, err) = s.cli(&["logs", "audit", "--grep", "AUDIT ", "--limit", "1000"]);
        assert!(ok, "{err}");
        let records: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| l.split_once("AUDIT ").map(|(_, j)| json(j)))
            .collect();
        if records.len() >= n || Instant::now() > until {
            assert_eq!(records.len(), n, "{out}");
            return records;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn destinations_get_lambdas_record_and_the_attempts_are_the_functions_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        "async_max_attempts = 3\nasync_backoff = \"100ms\"\n",
    );
    s.deploy(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/audit"));
    scorer(
        &s,
        dir.path(),
        "\n[async]\nmax_attempts = 2\non_success = \"audit\"\non_failure = \"audit\"\n",
    );
    let ok = submit(&s, "scorer", r#"{"n": 1}"#);
    let bad = submit(&s, "scorer", r#"{"action": "raise"}"#);
    wait_for(&s, &ok, "succeeded");
    let dead = wait_for(&s, &bad, "dead");
    assert_eq!(
        dead["attempts"], 2,
        "[async] max_attempts, not the server's 3: {dead}"
    );

    let records = audited(&s, 2);
    let of = |id: &str| {
        records
            .iter()
            .find(|r| r["requestContext"]["requestId"] == id)
            .unwrap_or_else(|| panic!("no record of {id}: {records:?}"))
    };
    let success = of(&ok);
    assert_eq!(success["version"], "1.0");
    assert_eq!(success["requestContext"]["condition"], "Success");
    assert_eq!(success["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        success["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:scorer:$LATEST"
    );
    assert_eq!(success["requestPayload"]["n"], 1);
    assert_eq!(success["responsePayload"]["echo"]["n"], 1);
    assert_eq!(success["responseContext"]["executedVersion"], "1");
    let failure = of(&bad);
    assert_eq!(failure["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(failure["requestContext"]["approximateInvokeCount"], 2);
    assert_eq!(failure["responseContext"]["functionError"], "Unhandled");
    assert_eq!(failure["responsePayload"]["errorType"], "ValueError");
    assert_eq!(
        failure["responsePayload"]["errorMessage"],
        "boom: on purpose"
    );
    // The failed event is in the dead-letter store too, to be re-driven.
    let letters = admin(&s, "/v1/dlq?function=scorer");
    assert_eq!(letters["events"].as_array().unwrap().len(), 1, "{letters}");
}

#[test]
fn past_its_byte_budget_a_function_refuses_events_until_its_queue_drains() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        "async_max_payload_kb = 1024\nasync_backoff = \"100ms\"\n",
    );
    scorer(&s, dir.path(), "\n[async]\nmax_queued_mb = 1\n");
    // Nothing runs (reserved concurrency 0): events wait.
    let (ok, _, err) = s.cli(&["config", "scorer", "--reserved-concurrency", "0"]);
    assert!(ok, "{err}");
    let event = dir.path().join("400k.json");
    std::fs::write(
        &event,
        format!("{{\"pad\": \"{}\"}}", "x".repeat(400 * 1024)),
    )
    .unwrap();
    let post = || {
        curl(&[
            "-X",
            "POST",
            &format!("{}/v1/functions/scorer/invoke-async", s.url),
            "--data-binary",
            &format!("@{}", event.display()),
        ])
    };
    assert_eq!(post().0, 202);
    assert_eq!(post().0, 202);
    let (code, body) = post();
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("max_queued_mb = 1"), "{body}");
    // Once they run, there is room again.
    let (ok, _, err) = s.cli(&["config", "scorer", "--reserved-concurrency", "2"]);
    assert!(ok, "{err}");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let depth = admin(&s, "/v1/async");
        let scorer = depth["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == "scorer")
            .cloned()
            .unwrap();
        if scorer["succeeded"] == 2 {
            break;
        }
        assert!(Instant::now() < until, "{depth}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(post().0, 202);
}
