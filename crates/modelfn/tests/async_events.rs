//! Asynchronous invocations end to end: `invoke-async` and Lambda's `Event` type answer
//! 202 once the event is stored; it runs, and its answer is read by request id; a failing
//! event is tried `async_max_attempts` times, lands in the dead-letter store, and runs
//! again after `modelfn dlq redrive` once the function is fixed; and accepted events
//! survive two `kill -9`s of the server, every one running at least once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::events::{admin, depth, server, submit, wait_for};
use common::{copy_dir, curl, example};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn behaviours() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours")
}

#[test]
fn events_run_fail_into_the_dead_letters_and_are_redriven() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        "aws_allow_unsigned = true\nasync_max_attempts = 2\nasync_backoff = \"100ms\"\n",
    );
    let pkg = dir.path().join("behaviours");
    copy_dir(&behaviours(), &pkg);
    s.deploy(&pkg);
    s.deploy(&example("iris"));

    // A model's answer, by request id.
    let id = submit(
        &s,
        "iris",
        r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
    );
    let st = wait_for(&s, &id, "succeeded");
    assert!(st["result"]["prediction"].is_string(), "{st}");
    assert_eq!(
        (st["attempts"].as_u64(), st["version"].as_u64()),
        (Some(1), Some(1))
    );

    // Lambda's Event type, as the AWS CLI and boto3 send it.
    let (code, head) = curl(&[
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("{}/2015-03-31/functions/behaviours/invocations", s.url),
        "-H",
        "X-Amz-Invocation-Type: Event",
        "-d",
        r#"{"action": "echo"}"#,
    ]);
    assert_eq!(code, 202, "{head}");
    let lambda_id = common::header(&head.to_lowercase(), "x-amzn-requestid")
        .unwrap()
        .to_string();
    let st = wait_for(&s, &lambda_id, "succeeded");
    assert_eq!(st["result"]["echo"]["action"], "echo", "{st}");

    // Refusals name the limit or the function.
    let big_file = dir.path().join("big.json");
    std::fs::write(
        &big_file,
        format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024)),
    )
    .unwrap();
    let big = format!("@{}", big_file.display());
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/iris/invoke-async", s.url),
        "-d",
        &big,
    ]);
    assert!(
        code == 413 && body.contains("262144 bytes"),
        "{code} {body}"
    );
    let (code, _) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/nope/invoke-async", s.url),
        "-d",
        "{}",
    ]);
    assert_eq!(code, 404);

    // A failing handler: tried twice, then a dead letter with the reason and the event.
    let failing = submit(
        &s,
        "behaviours",
        r#"{"action": "needs", "greeting": "fixed"}"#,
    );
    let st = wait_for(&s, &failing, "dead");
    assert_eq!(st["attempts"], 2, "{st}");
    assert!(
        st["last_error"].as_str().unwrap().contains("not yet"),
        "{st}"
    );
    let (ok, out, err) = s.cli(&["dlq", "list", "behaviours"]);
    assert!(
        ok && out.contains(&failing) && out.contains("not yet"),
        "{out}{err}"
    );
    let (ok, out, _) = s.cli(&["dlq", "show", &failing]);
    assert!(ok && out.contains("\"greeting\": \"fixed\""), "{out}");

    // Fixed, and redriven: it runs again and succeeds.
    let manifest = pkg.join("modelfn.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("GREETING = \"hello\"", "GREETING = \"fixed\""),
    )
    .unwrap();
    s.deploy(&pkg);
    let (ok, out, err) = s.cli(&["dlq", "redrive", "behaviours"]);
    assert!(ok && out.contains("redriven: 1"), "{out}{err}");
    let st = wait_for(&s, &failing, "succeeded");
    assert_eq!(
        (st["result"].as_str(), st["version"].as_u64()),
        (Some("fixed"), Some(2)),
        "{st}"
    );
    let (ok, out, _) = s.cli(&["dlq", "list", "behaviours"]);
    assert!(ok && out.contains("(no dead letters)"), "{out}");
    let (ok, out, _) = s.cli(&["async", "list"]);
    assert!(
        ok && out.contains("behaviours") && out.contains("iris"),
        "{out}"
    );
    // And on /metrics: by state, and the age of the oldest waiting.
    let auth = format!("Authorization: Bearer {}", s.token());
    let (_, text) = curl(&["-H", &auth, &format!("{}/metrics", s.url)]);
    for want in [
        "modelfn_async_events{function=\"iris\",state=\"succeeded\"} 1",
        "modelfn_async_events{function=\"behaviours\",state=\"dead\"} 0",
        "modelfn_async_oldest_age_seconds{function=\"iris\"} 0",
    ] {
        assert!(text.contains(want), "{want} is missing:\n{text}");
    }
}

/// Every function's queue, by name.
#[test]
fn accepted_events_survive_two_kill_9s() {
    const N: usize = 10_000;
    const IN_FLIGHT: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let config = format!("async_max_in_flight = {IN_FLIGHT}\nasync_backoff = \"100ms\"\n");
    let s = server(dir.path(), &config);
    s.deploy(&behaviours());
    // Accepted with curl's own parallel transfers: N requests, 32 at a time (`next`
    // keeps each request's data its own).
    let url = format!("{}/v1/functions/behaviours/invoke-async", s.url);
    let list = dir.path().join("curl.cfg");
    let one = format!(
        "url = \"{url}\"\nrequest = \"POST\"\ndata = \"{{\\\"action\\\": \\\"sleep\\\", \\\"seconds\\\": 0.001}}\"\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\\\\n\"\n"
    );
    std::fs::write(&list, vec![one; N].join("next\n")).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-Z",
            "--parallel-max",
            "32",
            "-K",
            list.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let codes = String::from_utf8_lossy(&out.stdout);
    let other: Vec<&str> = codes.lines().filter(|c| *c != "202").collect();
    assert_eq!(codes.lines().count() - other.len(), N, "not 202: {other:?}");

    // Killed mid-work, twice.
    drop(s);
    let s = server(dir.path(), &config);
    let after_first = depth(&s, "behaviours");
    let waiting =
        after_first["queued"].as_u64().unwrap() + after_first["running"].as_u64().unwrap();
    assert!(
        waiting > 0,
        "the first kill came after the work was done: {after_first}"
    );
    std::thread::sleep(Duration::from_millis(700));
    drop(s);
    let s = server(dir.path(), &config);

    let until = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let d = depth(&s, "behaviours");
        if d["succeeded"].as_u64() == Some(N as u64) || Instant::now() > until {
            break d;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        done["succeeded"].as_u64(),
        Some(N as u64),
        "every accepted event ran: {done} {}",
        admin(&s, "/v1/dlq?limit=2")
    );
    assert_eq!(
        (done["queued"].as_u64(), done["dead"].as_u64()),
        (Some(0), Some(0)),
        "{done}"
    );
    // At least once: only what was running at a kill ran again.
    let reran = done["reran"].as_u64().unwrap();
    assert!(reran <= 2 * IN_FLIGHT, "{reran} ran twice: {done}");
    println!("{N} events, 2 kills: {reran} ran more than once");
}

/// Accepts `n` copies of the event in `file` for `url`, `parallel` at a time, with curl;
/// answers how many were accepted (202).
fn submit_many(dir: &Path, url: &str, file: &Path, n: usize, parallel: usize) -> usize {
    let one = format!(
        "url = \"{url}\"\nrequest = \"POST\"\ndata-binary = \"@{}\"\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\\n\"\n",
        file.display()
    );
    let list = dir.join("many.cfg");
    std::fs::write(&list, vec![one; n].join("next\n")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "-Z", "--parallel-max", &parallel.to_string(), "-K"])
        .arg(&list)
        .output()
        .unwrap();
    let codes = String::from_utf8_lossy(&out.stdout);
    let accepted = codes.lines().filter(|c| *c == "202").count();
    if accepted != n {
        eprintln!(
            "not 202: {:?}",
            codes.lines().filter(|c| *c != "202").collect::<Vec<_>>()
        );
    }
    accepted
}

/// 200 events of 5 MB for a function that runs one at a time: every one is accepted and
/// runs, and the server's memory does not grow with them (they wait on disk).
#[test]
fn large_events_wait_on_disk_not_in_memory() {
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "async_max_payload_kb = 6144\n");
    s.deploy(&behaviours());
    let (ok, _, err) = s.cli(&["config", "behaviours", "--reserved-concurrency", "1"]);
    assert!(ok, "{err}");
    let event = dir.path().join("five-mb.json");
    let pad = "x".repeat(5 * 1024 * 1024);
    std::fs::write(
        &event,
        format!("{{\"action\": \"sleep\", \"seconds\": 0, \"pad\": \"{pad}\"}}"),
    )
    .unwrap();
    let url = format!("{}/v1/functions/behaviours/invoke-async", s.url);
    // Warm: one accepted and run, so that the baseline holds a run's memory.
    assert_eq!(submit_many(dir.path(), &url, &event, 1, 1), 1);
    let until = Instant::now() + Duration::from_secs(60);
    while depth(&s, "behaviours")["succeeded"] != 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = s.child.id();
    let before = common::peak_rss_kb(pid);
    assert_eq!(submit_many(dir.path(), &url, &event, N, 2), N);
    let until = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let d = depth(&s, "behaviours");
        if d["succeeded"].as_u64() == Some(N as u64 + 1) || Instant::now() > until {
            break d;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(done["succeeded"].as_u64(), Some(N as u64 + 1), "{done}");
    let grew_mb = common::peak_rss_kb(pid).saturating_sub(before) / 1024;
    println!("{N} events of 5 MB: the server's peak RSS grew by {grew_mb} MB");
    assert!(grew_mb < 100, "the peak RSS grew by {grew_mb} MB");
}

/// A client that declares a large event and sends it slowly cannot keep the room for
/// large events: after 30 s it gets 408, and an event waiting behind it is accepted.
#[test]
fn a_slow_event_body_times_out_and_frees_its_room() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), "async_max_payload_kb = 6144\n");
    s.deploy(&behaviours());
    let addr = s.url.trim_start_matches("http://").to_string();
    // Declares 6 MB (most of the 8 MB of room), sends 10 bytes, then waits.
    let slow = std::thread::spawn(move || {
        let script = format!(
            "import socket,time\nh,p='{addr}'.split(':')\ns=socket.create_connection((h,int(p)))\n\
             s.sendall(b'POST /v1/functions/behaviours/invoke-async HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: 6000000\\r\\n\\r\\n{{\"pad\": \"')\n\
             s.settimeout(60)\nprint(s.recv(200).decode().split('\\r\\n')[0])\n"
        );
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    });
    std::thread::sleep(Duration::from_millis(500));
    let event = dir.path().join("five-mb.json");
    std::fs::write(
        &event,
        format!("{{\"pad\": \"{}\"}}", "x".repeat(5 * 1024 * 1024)),
    )
    .unwrap();
    let t = Instant::now();
    let (code, body) = curl(&[
        "--max-time",
        "90",
        "-X",
        "POST",
        &format!("{}/v1/functions/behaviours/invoke-async", s.url),
        "--data-binary",
        &format!("@{}", event.display()),
    ]);
    assert_eq!(code, 202, "{body}");
    let waited = t.elapsed();
    assert_eq!(slow.join().unwrap(), "HTTP/1.1 408 Request Timeout");
    println!("the event behind a slow sender was accepted after {waited:?}");
}
