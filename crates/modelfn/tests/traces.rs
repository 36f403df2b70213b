//! Traces. A caller's trace reaches the code function, as on Lambda: a W3C `traceparent`
//! (native invoke) or an `X-Amzn-Trace-Id` (Lambda's Invoke) becomes the
//! `Lambda-Runtime-Trace-Id` of the event, which the runtime client puts in
//! `_X_AMZN_TRACE_ID`, with modelfn's run span as the parent; without one, each
//! invocation gets a new root. modelfn's own trace of an invocation shows a cold start
//! apart (an instance-start span that a warm call has not), takes the caller's span as its
//! parent, and reaches an OTLP collector (a stub here, decoding what it receives with the
//! OpenTelemetry protocol's own messages).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, header, json, Server};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

fn trace_seen(s: &Server, path: &str, header: Option<&str>) -> String {
    let url = format!("{}{path}", s.url);
    let mut args = vec!["-X", "POST", &url, "-d", r#"{"action": "trace"}"#];
    if let Some(h) = header {
        args.extend(["-H", h]);
    }
    let (code, body) = curl(&args);
    assert_eq!(code, 200, "{body}");
    json(&body)["trace"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: {body}"))
        .to_string()
}

#[test]
fn a_callers_trace_reaches_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_unsigned(dir.path());
    s.deploy(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours"));
    // The caller's trace and sampled flag; the parent is modelfn's run span (checked below).
    let same_trace = |seen: &str, root: &str, caller: &str| {
        assert!(seen.starts_with(&format!("Root={root};Parent=")), "{seen}");
        assert!(
            seen.ends_with(";Sampled=1") && !seen.contains(caller),
            "{seen}"
        );
    };
    let tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    same_trace(
        &trace_seen(&s, "/v1/functions/behaviours/invoke", Some(tp)),
        "1-4bf92f35-77b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    );
    let amzn = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    same_trace(
        &trace_seen(
            &s,
            "/2015-03-31/functions/behaviours/invocations",
            Some(&format!("X-Amzn-Trace-Id: {amzn}")),
        ),
        "1-5759e988-bd862e3fe1be46a994272793",
        "53995c3f42cd8ad8",
    );
    // Without one, a new root each time; a malformed one is not passed on.
    let a = trace_seen(&s, "/v1/functions/behaviours/invoke", None);
    let b = trace_seen(
        &s,
        "/v1/functions/behaviours/invoke",
        Some("traceparent: 00-zz-1-1"),
    );
    assert!(
        a.starts_with("Root=1-") && b.starts_with("Root=1-") && a != b,
        "{a} {b}"
    );
    assert!(!b.contains("zz"), "{b}");
}

fn behaviours() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours")
}

/// Invokes `path` with `event` (and a header); answers the request id and the body.
fn call(s: &Server, path: &str, event: &str, extra: Option<&str>) -> (String, String) {
    let url = format!("{}{path}", s.url);
    let mut args = vec!["-s", "-D", "-", "-X", "POST", &url, "-d", event];
    if let Some(h) = extra {
        args.extend(["-H", h]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}\n{body}");
    let id = header(&head, "x-modelfn-request-id").unwrap().to_string();
    (id, body.to_string())
}

/// modelfn's kept trace of a request.
fn trace_of(s: &Server, request_id: &str) -> serde_json::Value {
    let auth = format!("Authorization: Bearer {}", s.token());
    let (code, body) = curl(&[&format!("{}/v1/traces/{request_id}", s.url), "-H", &auth]);
    assert_eq!(code, 200, "{body}");
    json(&body)
}

fn span<'a>(trace: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
}

#[test]
fn the_function_runs_under_modelfns_run_span() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_unsigned(dir.path());
    s.deploy(&behaviours());
    let tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (id, body) = call(
        &s,
        "/v1/functions/behaviours/invoke",
        r#"{"action": "trace"}"#,
        Some(tp),
    );
    let seen = json(&body)["trace"].as_str().unwrap().to_string();
    assert_eq!(
        curl(&[&format!("{}/v1/traces/{id}", s.url)]).0,
        401,
        "traces need the token"
    );
    let t = trace_of(&s, &id);
    let run = span(&t, "run").unwrap()["span_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        seen,
        format!("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent={run};Sampled=1")
    );
    // Without a caller's trace the function's root is modelfn's own trace.
    let (id, body) = call(
        &s,
        "/v1/functions/behaviours/invoke",
        r#"{"action": "trace"}"#,
        None,
    );
    let seen = json(&body)["trace"].as_str().unwrap().to_string();
    let t = trace_of(&s, &id);
    let tid = t["trace_id"].as_str().unwrap();
    assert!(
        seen.starts_with(&format!("Root=1-{}-{};", &tid[..8], &tid[8..])),
        "{seen} {t}"
    );
}

/// A collector stub on loopback: answers every request 200 and hands each body over.
fn collector() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let mut body_at = None;
            let mut len = 0;
            loop {
                if let Some(i) = body_at {
                    if buf.len() >= i + len {
                        break;
                    }
                }
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if body_at.is_none() {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        body_at = Some(i + 4);
                    }
                }
            }
            let Some(i) = body_at else { continue };
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((head, buf[i..].to_vec()));
        }
    });
    (url, rx)
}

#[test]
fn cold_starts_stand_apart_and_spans_reach_an_otlp_collector() {
    let (url, bodies) = collector();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, format!("otlp_endpoint = {url:?}\n")).unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    s.deploy(&behaviours());
    s.deploy(&example("iris"));

    let echo = r#"{"action": "echo"}"#;
    let (cold, _) = call(&s, "/v1/functions/behaviours/invoke", echo, None);
    let tp = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (warm, _) = call(&s, "/v1/functions/behaviours/invoke", echo, Some(tp));
    let row = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;
    let (model, _) = call(&s, "/v1/functions/iris/invoke", row, None);

    let c = trace_of(&s, &cold);
    assert_eq!(c["cold"], true, "{c}");
    let start = span(&c, "instance start").unwrap_or_else(|| panic!("{c}"));
    assert!(
        start["duration_us"].as_u64().unwrap() > 1000,
        "a process start takes time: {c}"
    );
    assert_eq!(
        span(&c, "invoke behaviours").unwrap()["attributes"]["faas.coldstart"],
        true
    );
    for name in ["route", "queue", "run"] {
        assert!(span(&c, name).is_some(), "{name}: {c}");
    }
    let w = trace_of(&s, &warm);
    assert_eq!(w["cold"], false, "{w}");
    assert!(
        span(&w, "instance start").is_none(),
        "a warm call starts nothing: {w}"
    );
    assert_eq!(w["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(w["spans"][0]["parent_span_id"], "b7ad6b7169203331", "{w}");
    let m = trace_of(&s, &model);
    assert!(
        span(&m, "model load").is_some(),
        "the model's first call loads it: {m}"
    );
    let batch = span(&m, "batch").unwrap_or_else(|| panic!("{m}"));
    assert_eq!(batch["attributes"]["modelfn.batch.rows"], 1);

    // The collector receives the same traces, span for span.
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        let Ok((head, body)) = bodies.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        assert!(head.starts_with("POST /v1/traces"), "{head}");
        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for rs in &req.resource_spans {
            for ss in &rs.scope_spans {
                for sp in &ss.spans {
                    let tid: String = sp.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    seen.entry(tid).or_default().push(sp.name.clone());
                }
            }
        }
    }
    for t in [&c, &w, &m] {
        let tid = t["trace_id"].as_str().unwrap();
        let mut got = seen
            .get(tid)
            .cloned()
            .unwrap_or_else(|| panic!("{tid} not exported: {seen:?}"));
        let mut want: Vec<String> = t["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
    // And /metrics says so.
    let auth = format!("Authorization: Bearer {}", s.token());
    let (_, text) = curl(&[&format!("{}/metrics", s.url), "-H", &auth]);
    let exported: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("modelfn_traces_exported_spans_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(exported >= 15, "{exported}");
}
