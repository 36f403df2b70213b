//! Prometheus metrics end to end: known traffic (100 invocations of a Python function,
//! 2 of them function errors, 1 cold start; 3 throttled calls of a stopped function; 5
//! calls of a model) moves exactly the series it should; the exposition passes
//! `promtool check metrics`; `/metrics` needs the admin token or the metrics token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, invoke, Server};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The value of one series, found by its name and every label it must carry.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse().unwrap())
}

#[test]
fn metrics_count_known_traffic_where_it_belongs() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(common::bin());
    cmd.env("MODELFN_METRICS_TOKEN", "scrape-me");
    let s = Server::start_command(dir.path(), &[], cmd);
    let behaviours = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/behaviours");
    s.deploy(&behaviours);
    let (ok, _, err) = s.cli(&["deploy", behaviours.to_str().unwrap(), "--name", "stopped"]);
    assert!(ok, "{err}");
    assert!(
        s.cli(&["config", "stopped", "--reserved-concurrency", "0"])
            .0
    );
    s.deploy(&example("iris"));

    let url = |f: &str| format!("{}/v1/functions/{f}/invoke", s.url);
    for i in 0..100 {
        let event = if i % 50 == 7 {
            r#"{"action": "raise"}"#
        } else {
            r#"{"action": "print", "text": "hi"}"#
        };
        invoke(&url("behaviours"), event);
    }
    for _ in 0..3 {
        let (code, _, _) = invoke(&url("stopped"), "{}");
        assert_eq!(code, 429);
    }
    for _ in 0..5 {
        let (code, _, _) = invoke(
            &url("iris"),
            r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
        );
        assert_eq!(code, 200);
    }
    let (code, _, _) = invoke(&url("iris"), r#"{"nope": 1}"#);
    assert_eq!(code, 400);

    let (code, text) = curl(&[
        "-H",
        "Authorization: Bearer scrape-me",
        &format!("{}/metrics", s.url),
    ]);
    assert_eq!(code, 200, "{text}");
    let inv = "modelfn_function_invocations_total";
    let b = [("function", "behaviours"), ("version", "1")];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = b.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(
        value(&text, inv, &with(("outcome", "success"))),
        Some(98.0),
        "{text}"
    );
    assert_eq!(
        value(&text, inv, &with(("outcome", "function_error"))),
        Some(2.0)
    );
    assert_eq!(
        value(&text, inv, &with(("outcome", "throttled"))),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "modelfn_function_cold_starts_total", &b),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "modelfn_function_duration_seconds_count", &b),
        Some(100.0)
    );
    assert_eq!(
        value(&text, "modelfn_function_init_seconds_count", &b),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "modelfn_function_instances",
            &[("function", "behaviours"), ("state", "idle")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            inv,
            &[("function", "stopped"), ("outcome", "throttled")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "modelfn_function_duration_seconds_count",
            &[("function", "stopped")]
        ),
        Some(0.0),
        "a throttled call did not run"
    );
    assert_eq!(
        value(&text, inv, &[("function", "iris"), ("outcome", "success")]),
        Some(5.0)
    );
    assert_eq!(
        value(
            &text,
            inv,
            &[("function", "iris"), ("outcome", "bad_input")]
        ),
        Some(1.0)
    );

    // Requests by front door and status class (a function error is still a 200).
    let http = "modelfn_http_requests_total";
    assert_eq!(
        value(&text, http, &[("door", "native"), ("class", "2xx")]),
        Some(105.0)
    );
    assert_eq!(
        value(&text, http, &[("door", "native"), ("class", "4xx")]),
        Some(4.0)
    );
    assert!(value(&text, http, &[("door", "admin"), ("class", "2xx")]).unwrap() >= 3.0);

    // Every histogram's +Inf bucket is its count, and its buckets only grow.
    let mut histograms = 0;
    for line in text.lines().filter(|l| l.contains("_bucket{")) {
        let (series, n) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap();
        if !labels.starts_with("le=\"+Inf\"") {
            continue;
        }
        histograms += 1;
        let rest = labels.trim_start_matches("le=\"+Inf\",");
        let count = format!("{}_count{{{rest} ", name.trim_end_matches("_bucket"));
        let want = text.lines().find_map(|l| l.strip_prefix(&count)).unwrap();
        assert_eq!(n, want, "{line}");
    }
    assert!(histograms >= 8, "{histograms}");
    let iris = [("function", "iris"), ("le", "0.01")];
    let fast = value(&text, "modelfn_function_run_seconds_bucket", &iris).unwrap();
    assert!(
        (1.0..=6.0).contains(&fast),
        "at most the 6 calls of iris ran under 10 ms: {fast}"
    );

    // promtool (Prometheus's own checker) reads the exposition without a complaint.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Prometheus itself asks for OpenMetrics and gets it.
    let (code, om) = curl(&[
        "-H",
        "Authorization: Bearer scrape-me",
        "-H",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        &format!("{}/metrics", s.url),
    ]);
    assert_eq!(code, 200);
    assert!(
        om.contains("# TYPE modelfn_function_invocations counter") && om.ends_with("# EOF\n"),
        "{om}"
    );

    // The stats behind `modelfn top` need the admin token.
    assert_eq!(curl(&[&format!("{}/v1/stats", s.url)]).0, 401);

    // The admin token works too; anything else is 401.
    let admin = format!("Authorization: Bearer {}", s.token());
    assert_eq!(curl(&["-H", &admin, &format!("{}/metrics", s.url)]).0, 200);
    for auth in ["Authorization: Bearer wrong", "X-Nothing: 1"] {
        let (code, body) = curl(&["-H", auth, &format!("{}/metrics", s.url)]);
        assert_eq!(code, 401, "{body}");
    }
}

#[test]
fn top_shows_the_rate_of_a_function_under_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let url = format!("{}/v1/functions/iris/invoke", s.url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                invoke(&url, r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#);
            }
        })
    };
    let (ok, out, err) = s.cli(&["top", "--iterations", "2", "--interval", "1"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert!(ok, "{err}");
    let row = out
        .lines()
        .rfind(|l| l.starts_with("iris "))
        .unwrap_or_else(|| panic!("no iris row: {out}"));
    let rate: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rate > 1.0, "invocations per second: {out}");
    assert!(row.contains('≤'), "a p99 under traffic: {out}");
}
