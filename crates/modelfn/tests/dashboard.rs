//! The dashboard in a real browser: headless Chromium (Debian `chromium`) opens
//! `/dashboard` with the admin token, runs its script, and the page it builds shows the
//! functions, charts with data, recent invocations with a cold start told apart, a trace
//! waterfall of the cold start, and the cost report. A screenshot is saved to `target/dashboard.png` (CI keeps it). A wrong
//! token gets the sign-in page and the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{example, invoke, Server};
use std::path::Path;
use std::process::Command;

/// Chromium's DOM of `url` once its script has run (or a screenshot to `shot`).
fn chromium(url: &str, shot: Option<&Path>) -> String {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        // Tests may run as root, where Chromium's own sandbox cannot start.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=10000",
        "--window-size=1280,1900",
    ]);
    match shot {
        Some(p) => cmd.arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    // chromium is the Debian package of that name.
    common::stdout_of(cmd.arg(url))
}

#[test]
fn the_dashboard_shows_functions_charts_invocations_and_cost_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let behaviours = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours");
    s.deploy(&behaviours);
    s.deploy(&example("iris"));
    let url = |f: &str| format!("{}/v1/functions/{f}/invoke", s.url);
    for _ in 0..5 {
        let (code, _, body) = invoke(&url("behaviours"), r#"{"action": "print", "text": "hi"}"#);
        assert_eq!(code, 200, "{body}");
    }
    invoke(&url("behaviours"), r#"{"action": "raise"}"#);
    for _ in 0..20 {
        invoke(
            &url("iris"),
            r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let page = format!("{}/dashboard#token={}", s.url, s.token());
    let whole = chromium(&page, None);
    // What the script built (the script's own text comes after).
    let dom = whole.split("<script>").next().unwrap();
    // Both functions, with their counters.
    for says in [">behaviours<", ">iris<", ">python3<", ">onnx<"] {
        assert!(dom.contains(says), "{says} is missing: {dom}");
    }
    // The first function's charts have data: invocations, errors, cold starts, durations.
    for series in ["invocations", "errors", "cold_starts", "p50_ms", "p99_ms"] {
        let tag = format!("data-series=\"{series}\" data-points=\"");
        let at = dom
            .find(&tag)
            .unwrap_or_else(|| panic!("no {series} chart: {dom}"));
        let points: u32 = dom[at + tag.len()..]
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(points >= 1, "the {series} chart is empty: {dom}");
    }
    // Its recent invocations: six, one cold, one failed.
    let (recent, traces) = dom.split_once("id=\"traces\"").unwrap();
    assert_eq!(recent.matches("data-id=").count(), 6, "{dom}");
    assert_eq!(
        recent.matches("<span class=\"cold\">cold</span>").count(),
        1,
        "{dom}"
    );
    assert!(recent.contains(">function_error"), "{dom}");
    // Its traces, the cold start's waterfall open: its instance start beside the run.
    assert!(traces.contains("data-id="), "no traces: {traces}");
    assert!(traces.contains("(cold start)"), "{traces}");
    for span in [">instance start<", ">queue<", ">run<", ">route<"] {
        assert!(traces.contains(span), "{span} is missing: {traces}");
    }
    assert!(dom.contains("serverless total"), "{dom}");
    // The node itself, up, in the cluster panel (a cluster of one on SQLite).
    let nodes = dom.split("id=\"nodes\"").nth(1).unwrap_or_default();
    assert!(
        nodes.contains("(this)") && nodes.contains(">up<") && dom.contains("a cluster of one"),
        "{nodes}"
    );

    // A screenshot, kept by CI.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard.png");
    chromium(&page, Some(&shot));
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );

    // A wrong token: the sign-in page, saying why.
    let dom = chromium(&format!("{}/dashboard#token=wrong", s.url), None);
    assert!(
        dom.contains("the token was refused") && dom.contains("Sign in"),
        "{dom}"
    );
}
