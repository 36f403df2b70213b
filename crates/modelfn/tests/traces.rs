//! A caller's trace reaches the code function, as on Lambda: a W3C `traceparent` (native
//! invoke) or an `X-Amzn-Trace-Id` (Lambda's Invoke) becomes the
//! `Lambda-Runtime-Trace-Id` of the event, which the runtime client puts in
//! `_X_AMZN_TRACE_ID`; without one, each invocation gets a new root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, json, Server};
use std::path::Path;

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
    let tp = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let want = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1";
    assert_eq!(
        trace_seen(&s, "/v1/functions/behaviours/invoke", Some(tp)),
        want
    );
    let amzn = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    assert_eq!(
        trace_seen(
            &s,
            "/2015-03-31/functions/behaviours/invocations",
            Some(&format!("X-Amzn-Trace-Id: {amzn}"))
        ),
        amzn
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
