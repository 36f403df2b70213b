//! Invocation records end to end: a native and a Python invocation found again by request
//! id through the CLI and the API; `--follow` shows a new one within a second; failures
//! by status; and the cost report reproduces seed 002's worked example from recorded
//! invocations of a half-second, 8 GB function.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, header, invoke, json, Server};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn function(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions")
        .join(name)
}

/// Invokes `f` with `event`; answers the request id.
fn call(s: &Server, f: &str, event: &str) -> String {
    let (_, head, _) = invoke(&format!("{}/v1/functions/{f}/invoke", s.url), event);
    header(&head, "x-modelfn-request-id").unwrap().to_string()
}

fn records(s: &Server, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["invocations"];
    all.extend_from_slice(args);
    all.push("--json");
    let (ok, out, err) = s.cli(&all);
    assert!(ok, "{err}");
    out.lines().map(json).collect()
}

#[test]
fn every_invocation_is_recorded_and_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    s.deploy(&function("behaviours"));
    let row = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
    let native = call(&s, "iris", row);
    let python = call(&s, "behaviours", r#"{"action": "print", "text": "hi"}"#);
    let failed = call(&s, "behaviours", r#"{"action": "raise"}"#);
    std::thread::sleep(Duration::from_millis(300));

    // By request id, through the CLI...
    let got = records(&s, &["iris", "--request-id", &native]);
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(
        (r["function"].as_str(), r["version"].as_u64()),
        (Some("iris"), Some(1))
    );
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["cold"], true, "the first call started the model: {r}");
    assert!(r["billed_ms"].as_u64().unwrap() >= 1 && r["memory_mb"].as_u64().is_some());
    let got = records(&s, &["behaviours", "--request-id", &python]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["outcome"], "success");
    assert!(
        got[0]["max_memory_used_mb"].as_u64().is_some(),
        "{}",
        got[0]
    );
    // ... and through the API.
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {}", s.token()),
        &format!(
            "{}/v1/functions/behaviours/invocations?request_id={failed}",
            s.url
        ),
    ]);
    assert_eq!(code, 200, "{body}");
    let r = &json(&body)["invocations"][0];
    assert_eq!(r["outcome"], "function_error");
    assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
    // By status.
    let errors = records(&s, &["behaviours", "--status", "error"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["request_id"], failed.as_str());
    assert_eq!(records(&s, &["behaviours", "--status", "success"]).len(), 1);
    // The table reads too.
    let (ok, out, _) = s.cli(&["invocations", "iris"]);
    assert!(ok && out.contains(&native) && out.contains("cold"), "{out}");

    // `modelfn logs` shows a model's START/END/REPORT, made from its record.
    let (ok, out, _) = s.cli(&["logs", "iris", "--request-id", &native]);
    assert!(ok, "{out}");
    for says in [
        "START RequestId: ",
        "END RequestId: ",
        "REPORT RequestId: ",
        "Init Duration: ",
    ] {
        assert!(out.contains(says) && out.contains(&native), "{says}: {out}");
    }
    // ... and a code function's lines by outcome and by text.
    let (ok, out, _) = s.cli(&["logs", "behaviours", "--status", "error"]);
    assert!(
        ok && out.contains(&failed) && !out.contains(&python),
        "{out}"
    );
    let (ok, out, _) = s.cli(&[
        "logs",
        "behaviours",
        "--grep",
        "REPORT",
        "--status",
        "success",
    ]);
    assert!(
        ok && out.contains(&python) && out.lines().count() == 1,
        "{out}"
    );

    // `modelfn logs --follow` shows a new invocation within a second.
    let mut follow = Command::new(common::bin())
        .args(["logs", "iris", "--follow", "--json"])
        .env("MODELFN_SERVER", &s.url)
        .env("MODELFN_DATA_DIR", &s.data_dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let fresh = call(&s, "iris", row);
    let seen = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains(&fresh) => break Some(t0.elapsed()),
            Ok(_) => {}
            Err(_) if t0.elapsed() > Duration::from_secs(3) => break None,
            Err(_) => {}
        }
    };
    let _ = follow.kill();
    let _ = follow.wait();
    let seen = seen.expect("--follow never showed the new invocation");
    assert!(seen < Duration::from_secs(1), "--follow took {seen:?}");
}

#[test]
fn the_cost_report_reproduces_seed_002s_worked_example() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&function("half-second"));
    for _ in 0..4 {
        call(&s, "half-second", "{}");
    }
    std::thread::sleep(Duration::from_millis(300));
    // 10,000 inferences a day of 0.5 s at 8 GB, 22 working days: $14.93 on Lambda behind
    // API Gateway ($14.67 of GB-s, $0.044 of invocations, $0.22 of API calls), 77.5% less
    // than the server.
    let (ok, out, err) = s.cli(&[
        "cost",
        "half-second",
        "--period",
        "1d",
        "--per-day",
        "10000",
        "--days",
        "22",
        "--json",
    ]);
    assert!(ok, "{err}");
    let c = json(&out);
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert_eq!(c["recorded"]["invocations"], 4, "{c}");
    // The recorded calls took 0.5 s and a little: the runtime's round trip, a few ms
    // on a loaded machine. The projection uses what was recorded.
    let each = f(&c["recorded"]["billed_seconds"]) / 4.0;
    assert!((0.5..0.6).contains(&each), "{c}");
    // The seed's arithmetic, at a call's recorded length: GB-s at $0.0000166667, $0.20 a
    // million invocations, $1.00 a million API calls; a $66.40 server.
    let seed = |seconds: f64| {
        let calls = 10_000.0 * 22.0;
        seconds * 8.0 * calls * 0.0000166667 + calls * 0.2e-6 + calls * 1e-6
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    // At exactly 0.5 s, the seed's figures: $14.93 and 77.5% less than the server.
    assert!((seed(0.5) - 14.931).abs() < 0.001);
    assert!(((66.4 - seed(0.5)) / 66.4 * 100.0 - 77.5).abs() < 0.05);
    let total = f(&c["serverless_usd"]);
    assert!(close(total, seed(each)), "{c}: not {}", seed(each));
    assert!(
        close(
            f(&c["projected"]["usage"]["billed_seconds"]),
            each * 220_000.0
        ),
        "{c}"
    );
    let saving = f(&c["saving_percent"]);
    assert!(close(saving, (66.4 - total) / 66.4 * 100.0), "{c}");
    assert!((saving - 77.5).abs() < 3.0, "{c}");
    let (ok, out, _) = s.cli(&["cost", "half-second", "--per-day", "10000", "--days", "22"]);
    assert!(
        ok && out.contains("serverless total") && out.contains("saving"),
        "{out}"
    );
}

/// A record names the door, the alias and the key of a call, and a model's batch; the
/// key's requests are counted on `/metrics`.
#[test]
fn records_name_the_door_the_alias_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, "invoke_auth = \"key\"\n").unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    s.deploy(&example("iris"));
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "1"]);
    assert!(ok, "{err}");
    let (_, out, _) = s.cli(&["keys", "create", "caller", "--json"]);
    let key = json(&out);
    let (id, api_key) = (
        key["access_key_id"].as_str().unwrap(),
        key["api_key"].as_str().unwrap(),
    );
    let url = format!("{}/v1/functions/iris:prod/invoke", s.url);
    let row = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
    let (code, head) = curl(&[
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &url,
        "-H",
        &format!("x-api-key: {api_key}"),
        "-d",
        row,
    ]);
    assert_eq!(code, 200, "{head}");
    let request_id = header(&head.to_lowercase(), "x-modelfn-request-id")
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(300));
    let got = records(&s, &["iris", "--request-id", &request_id]);
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(
        (r["door"].as_str(), r["alias"].as_str()),
        (Some("native"), Some("prod")),
        "{r}"
    );
    assert_eq!(r["key_id"].as_str(), Some(id), "{r}");
    assert_eq!(r["batch_rows"], 1, "{r}");
    let (_, text) = curl(&[
        &format!("{}/metrics", s.url),
        "-H",
        &format!("Authorization: Bearer {}", s.token()),
    ]);
    let want = format!("modelfn_http_key_requests_total{{key=\"{id}\",class=\"2xx\"}} 1");
    assert!(text.contains(&want), "{want} is missing:\n{text}");
    assert!(
        text.contains(
            "modelfn_model_batch_rows_bucket{le=\"1.0\",function=\"iris\",version=\"1\"} 1"
        ),
        "{text}"
    );
}
