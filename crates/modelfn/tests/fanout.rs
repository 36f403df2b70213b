//! Fan-out end to end: `modelfn map` runs seed 001's Monte Carlo job as 1,000
//! invocations and its estimate equals the same chunks computed directly; the map API
//! answers in the input's order, retries what failed, holds to its concurrency, and
//! refuses bad input with a 4xx that names what is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, json, Server};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn behaviours() -> PathBuf {
    common::test_function("behaviours")
}

fn python(args: &[&str]) -> String {
    common::stdout_of(Command::new("python3").args(args))
}

#[test]
fn the_monte_carlo_example_fans_out_1000_chunks_and_matches_a_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let mc = example("monte-carlo");
    s.deploy(&mc);
    let items = dir.path().join("items.jsonl");
    let results = dir.path().join("results.jsonl");
    let script = |f: &str| mc.join(f).to_str().unwrap().to_string();
    std::fs::write(&items, python(&[&script("items.py"), "1000", "2000"])).unwrap();
    let (ok, _, err) = s.cli(&[
        "map",
        "monte-carlo",
        "--input",
        items.to_str().unwrap(),
        "--concurrency",
        "64",
        "--results-only",
        "--output",
        results.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("1000 items, 1000 succeeded, 0 failed"),
        "{err}"
    );
    let mapped = python(&[&script("estimate.py"), results.to_str().unwrap()]);
    let direct = python(&[&script("estimate.py"), "--direct", items.to_str().unwrap()]);
    assert_eq!(mapped, direct, "the map's estimate is the direct one");
    assert!(mapped.contains("2000000 points, 1000 chunks"), "{mapped}");
    let pi: f64 = mapped
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 0.01, "{mapped}");
    println!("{}", mapped.trim());
}

fn map(s: &Server, function: &str, query: &str, body: &str) -> (u16, String) {
    curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/{function}/map{query}", s.url),
        "--data-binary",
        body,
    ])
}

#[test]
fn a_map_answers_in_order_retries_holds_its_concurrency_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, "map_max_input_mb = 1\n").unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    s.deploy(&behaviours());

    // In order, whatever order they finish in; a failing item is tried 1 + retries times.
    let body = "{\"action\": \"sleep\", \"seconds\": 0.4}\n{\"action\": \"raise\"}\n\n{\"n\": 3}\n";
    let (code, out) = map(&s, "behaviours", "?retries=1&concurrency=3", body);
    assert_eq!(code, 200, "{out}");
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 3, "{out}");
    let index: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(index, [0, 1, 2]);
    assert_eq!(lines[0]["result"], "slept");
    assert_eq!(
        (&lines[1]["ok"], &lines[1]["attempts"]),
        (&serde_json::json!(false), &serde_json::json!(2))
    );
    assert_eq!(lines[1]["error"]["type"], "ValueError");
    assert_eq!(lines[2]["result"]["echo"]["n"], 3);

    // Six items of 0.3 s two at a time take three rounds at least.
    let sleeps = ["{\"action\": \"sleep\", \"seconds\": 0.3}"; 6].join("\n");
    let t = Instant::now();
    let (code, out) = map(&s, "behaviours", "?concurrency=2", &sleeps);
    assert_eq!((code, out.lines().count()), (200, 6), "{out}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // Bad input: a 4xx naming what is wrong.
    for (query, body, want_code, want) in [
        (
            "?concurrency=0",
            "{}",
            400,
            "concurrency = 0 is not between 1 and 1000",
        ),
        ("?retries=11", "{}", 400, "retries = 11 is more than 10"),
        ("?colour=red", "{}", 400, "unknown field `colour`"),
        ("", "{}\n{nope\n", 400, "line 2 is not JSON"),
        ("", "\n \n", 400, "the body holds no items"),
    ] {
        let (code, out) = map(&s, "behaviours", query, body);
        assert_eq!(code, want_code, "{query} {body}: {out}");
        assert!(
            json(&out)["error"]["message"]
                .as_str()
                .unwrap()
                .contains(want),
            "{out}"
        );
    }
    let (code, out) = map(&s, "nothing-here", "", "{}");
    assert_eq!(code, 404, "{out}");
    let big = dir.path().join("big.jsonl");
    std::fs::write(&big, format!("\"{}\"\n", "x".repeat(2 * 1024 * 1024))).unwrap();
    let (code, out) = map(&s, "behaviours", "", &format!("@{}", big.display()));
    assert_eq!(code, 413, "{out}");
    assert!(out.contains("1048576 bytes"), "{out}");

    // The CLI fails when an item does, naming it.
    let items = dir.path().join("items.jsonl");
    std::fs::write(&items, "{\"n\": 1}\n{\"action\": \"raise\"}\n").unwrap();
    let (ok, out, err) = s.cli(&[
        "map",
        "behaviours",
        "-i",
        items.to_str().unwrap(),
        "--retries",
        "0",
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("1 items failed; the first: item 1: ValueError: boom"),
        "{err}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
}
