//! Snap start: instances of a Python version forked from its initialized template.
//! The runtime hooks run (before-snapshot once in the template, after-restore in each
//! instance), priming runs before the template is kept, each instance has its own state
//! and randomness, an instance cannot kill or read its template, and code that is not
//! fork-safe falls back to ordinary starts with the reason in its log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{call, copy_dir, curl, header, invoke, test_function, Server};
use serde_json::{json, Value};
use std::path::Path;

/// Calls `name` while another of its instances is busy for `busy_s` seconds, so that the
/// call needs a new instance; answers the new call's headers and body.
fn call_beside_busy(s: &Server, name: &str, busy_s: f64, event: Value) -> (String, Value) {
    let url = format!("{}/v1/functions/{name}/invoke", s.url);
    let busy = std::thread::spawn(move || {
        invoke(
            &url,
            &json!({"action": "sleep", "seconds": busy_s}).to_string(),
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = call(s, name, event);
    let (code, _, body) = busy.join().unwrap();
    assert_eq!(code, 200, "{body}");
    r
}

fn deploy_variant(s: &Server, work: &Path, name: &str, extra: &str, app: Option<&str>) {
    let dir = work.join(name);
    copy_dir(&test_function("snapper"), &dir);
    let m = std::fs::read_to_string(dir.join("modelfn.toml")).unwrap();
    let mut m = m.replace("name = \"snapper\"", &format!("name = \"{name}\""));
    if extra.contains("snap_start = false") {
        m = m.replace("snap_start_prime = \"prime.json\"\n", "");
    }
    std::fs::write(dir.join("modelfn.toml"), format!("{m}{extra}")).unwrap();
    if let Some(code) = app {
        let text = std::fs::read_to_string(dir.join("app.py")).unwrap();
        std::fs::write(dir.join("app.py"), format!("{code}\n{text}")).unwrap();
    }
    s.deploy(&dir);
}

fn logs(s: &Server, name: &str) -> String {
    let (ok, out, err) = s.cli(&["logs", name]);
    assert!(ok, "{err}");
    out
}

#[test]
fn instances_fork_from_the_primed_template_with_hooks_and_their_own_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&test_function("snapper"));

    // The first start initializes the template, then forks the instance from it.
    let (h, a) = call(&s, "snapper", json!({}));
    assert_eq!(header(&h, "x-modelfn-cold-start"), Some("true"));
    assert_eq!(
        header(&h, "x-modelfn-restored"),
        None,
        "the first start is an init"
    );
    assert_eq!(a["init_type"], "snap-start", "{a}");
    assert_eq!(
        a["primed"], true,
        "the saved event ran before the snapshot: {a}"
    );
    assert_eq!(
        a["before"], 1,
        "before-snapshot hook once, in the template: {a}"
    );
    assert_eq!(
        (&a["after"], &a["after_tag"]),
        (&json!(1), &json!("restored"))
    );
    assert_ne!(
        a["pid"], a["init_pid"],
        "the instance is a fork of the template: {a}"
    );
    let (_, a2) = call(&s, "snapper", json!({}));
    assert_eq!(
        (&a2["pid"], &a2["events"]),
        (&a["pid"], &json!(2)),
        "warm: {a2}"
    );

    // A second instance, needed while the first is busy, is restored from the template:
    // the template's state, not the first instance's, and its own random state.
    let (h, b) = call_beside_busy(&s, "snapper", 1.5, json!({}));
    assert_eq!(header(&h, "x-modelfn-cold-start"), Some("true"));
    assert_eq!(header(&h, "x-modelfn-restored"), Some("true"), "{h}");
    assert_eq!(
        (&b["events"], &b["after"], &b["before"]),
        (&json!(1), &json!(1), &json!(1)),
        "{b}"
    );
    assert_eq!(b["init_pid"], a["init_pid"], "the same template: {b}");
    assert_ne!(b["pid"], a["pid"]);
    assert_ne!(b["rand"], a["rand"], "re-seeded after the fork");
    assert_ne!(b["stream"], a["stream"], "each instance its own log stream");

    // Each instance in cgroups of its own (where modelfn has cgroups: as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let pids = common::function_pids(&s, "snapper");
        assert_eq!(
            pids.len(),
            2,
            "two instances, the spare not counted: {pids:?}"
        );
        let memory_cgroup = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .unwrap()
                .lines()
                .find(|l| l.contains(":memory:") || l.starts_with("0::"))
                .unwrap()
                .to_string()
        };
        let (a, b) = (memory_cgroup(pids[0]), memory_cgroup(pids[1]));
        assert!(
            a.contains("modelfn-") && b.contains("modelfn-") && a != b,
            "{a} {b}"
        );
    }

    // Lambda's REPORT lines: Init Duration for the first start, Restore Duration after.
    let out = logs(&s, "snapper");
    let reports: Vec<&str> = out.lines().filter(|l| l.contains("REPORT")).collect();
    assert_eq!(
        reports
            .iter()
            .filter(|l| l.contains("Init Duration"))
            .count(),
        1,
        "{out}"
    );
    assert!(
        reports.iter().any(|l| l.contains("Restore Duration")),
        "{out}"
    );

    // `describe` and /metrics count the restores among the cold starts.
    let (ok, out, err) = s.cli(&["describe", "snapper"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2 (1 restored from the snap-start template)"),
        "{out}"
    );
    let (code, text) = curl(&[
        "-H",
        &format!("Authorization: Bearer {}", s.token()),
        &format!("{}/metrics", s.url),
    ]);
    assert_eq!(code, 200);
    assert!(
        text.lines()
            .any(|l| l.starts_with("modelfn_function_restores_total{")
                && l.contains("function=\"snapper\"")
                && l.ends_with(" 1")),
        "{}",
        text.lines()
            .filter(|l| l.contains("restores"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_instance_cannot_kill_or_read_its_template() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&test_function("snapper"));
    let (_, r) = call(&s, "snapper", json!({"action": "attack"}));
    for path in ["/proc/1/mem", "/proc/1/environ"] {
        assert_ne!(r[path], "read", "{path} of the template was readable: {r}");
    }
    // Every signal was dropped by the kernel (pid 1 ignores them): the template lives
    // and a new instance is still restored from it.
    let (h, b) = call_beside_busy(&s, "snapper", 1.0, json!({}));
    assert_eq!(header(&h, "x-modelfn-restored"), Some("true"), "{r} {b}");
    // An instance that exits takes nothing else with it.
    let (code, _, body) = invoke(
        &format!("{}/v1/functions/snapper/invoke", s.url),
        &json!({"action": "exit", "code": 3}).to_string(),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Runtime exited with error: exit status 3"),
        "{body}"
    );
    let (h, _) = call(&s, "snapper", json!({}));
    assert_eq!(
        header(&h, "x-modelfn-cold-start"),
        Some("false"),
        "a sibling still warm"
    );
}

#[test]
fn code_that_is_not_fork_safe_starts_without_a_template() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // A thread left running by the module's code: a fork would lose it.
    deploy_variant(
        &s,
        work.path(),
        "threaded",
        "",
        Some("import threading, time\nthreading.Thread(target=lambda: time.sleep(3600), name=\"poller\", daemon=True).start()"),
    );
    let (_, a) = call(&s, "threaded", json!({}));
    assert_eq!(a["init_type"], "on-demand", "{a}");
    assert_eq!(a["pid"], a["init_pid"], "initialized in place: {a}");
    let (h, _) = call_beside_busy(&s, "threaded", 1.0, json!({}));
    assert_eq!(header(&h, "x-modelfn-restored"), None);
    let out = logs(&s, "threaded");
    assert!(
        out.contains("snap start is off for this version: threads were still running at snapshot time (poller)"),
        "{out}"
    );

    // A before-snapshot hook that raises refuses the snapshot too.
    deploy_variant(
        &s,
        work.path(),
        "hook-fails",
        "",
        Some("from snapshot_restore_py import register_before_snapshot\n@register_before_snapshot\ndef no():\n    raise RuntimeError('cannot close the pool')"),
    );
    let (_, a) = call(&s, "hook-fails", json!({}));
    assert_eq!(a["init_type"], "on-demand", "{a}");
    assert!(logs(&s, "hook-fails")
        .contains("a before-snapshot hook raised RuntimeError: cannot close the pool"));

    // snap_start = false: every instance initializes.
    deploy_variant(&s, work.path(), "plain", "snap_start = false\n", None);
    let (_, a) = call(&s, "plain", json!({}));
    assert_eq!(
        (&a["init_type"], &a["primed"]),
        (&json!("on-demand"), &json!(false)),
        "{a}"
    );
}

#[test]
fn snap_start_is_refused_where_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let pkg = work.path().join("p");
    copy_dir(&test_function("snapper"), &pkg);
    for (extra, reason) in [
        (
            "runtime_client = \"awslambdaric\"\nsnap_start = true\n",
            "snap_start needs modelfn's own Python client",
        ),
        (
            "snap_start = false\n",
            "snap_start_prime primes a snap-start template, and this function has none",
        ),
    ] {
        let m = std::fs::read_to_string(test_function("snapper").join("modelfn.toml")).unwrap();
        std::fs::write(pkg.join("modelfn.toml"), format!("{m}{extra}")).unwrap();
        let (ok, _, err) = s.cli(&["deploy", pkg.to_str().unwrap()]);
        assert!(!ok && err.contains(reason), "{err}");
    }
}
