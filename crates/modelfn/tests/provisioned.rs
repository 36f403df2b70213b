//! Provisioned concurrency on versions and aliases end to end: instances stay started for
//! a qualifier (an alias's split over its versions by weight); an alias with provisioned
//! concurrency warms its new version before it moves, and a deploy warms a new latest
//! with provisioned concurrency, so the first calls after either are warm; boto3's provisioned-concurrency calls work; bad settings are refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, header, invoke, json, run_client, Server};
use std::path::Path;

fn slow_init() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions/slow-init")
}

/// `n` calls of `name:qualifier` at once (each taking 0.5 s, so that they overlap):
/// (version, cold start, instance) of each.
fn calls(s: &Server, target: &str, n: usize) -> Vec<(String, bool, String)> {
    let url = format!("{}/v1/functions/{target}/invoke", s.url);
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || invoke(&url, r#"{"sleep": 0.5}"#))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            let (code, head, body) = h.join().unwrap();
            assert_eq!(code, 200, "{body}");
            let v = json(&body);
            (
                v["version"].as_str().unwrap().to_string(),
                header(&head, "x-modelfn-cold-start") == Some("true"),
                v["instance"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A server with two versions of slow-init and its alias `live` on `live`; the package
/// directory, to deploy again.
fn two_versions(dir: &Path, work: &Path, live: &str) -> (Server, std::path::PathBuf) {
    let s = Server::start(dir);
    let pkg = work.join("slow-init");
    copy_dir(&slow_init(), &pkg);
    for v in 1..=2 {
        common::set_description(&pkg, &format!("v{v}"));
        s.deploy(&pkg);
    }
    assert!(s.cli(&["alias", "set", "slow-init", "live", live]).0);
    (s, pkg)
}

fn status(s: &Server, function: &str) -> serde_json::Value {
    let (ok, out, err) = s.cli(&["provisioned", "list", function, "--json"]);
    assert!(ok, "{err}");
    json(&out)
}

#[test]
fn an_alias_warms_its_new_version_before_it_moves() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (s, pkg) = two_versions(dir.path(), work.path(), "1");

    // Two instances of version 1 stay started for the alias: two calls at once are warm.
    let (ok, out, err) = s.cli(&["provisioned", "set", "slow-init", "live", "2"]);
    assert!(ok, "{err}");
    assert!(out.contains("READY"), "{out}");
    let got = calls(&s, "slow-init:live", 2);
    assert!(
        got.iter().all(|(v, cold, _)| v == "1" && !cold),
        "provisioned calls are warm: {got:?}"
    );
    assert_ne!(got[0].2, got[1].2, "two instances answered: {got:?}");

    // The move returns once version 2's two instances are up: the first calls on it are
    // warm, and version 1 keeps none provisioned.
    let (ok, _, err) = s.cli(&["alias", "set", "slow-init", "live", "2"]);
    assert!(ok, "{err}");
    let st = status(&s, "slow-init");
    assert_eq!(st[0]["status"], "READY", "{st}");
    assert_eq!(st[0]["allocated"], 2, "{st}");
    let got = calls(&s, "slow-init:live", 2);
    assert!(
        got.iter().all(|(v, cold, _)| v == "2" && !cold),
        "the first calls after the move are warm, on version 2: {got:?}"
    );

    // Split by weight: 50/50 of 2 is one instance of each version.
    assert!(s.cli(&["alias", "set", "slow-init", "live", "1:50,2:50"]).0);
    let (ok, out, _) = s.cli(&["provisioned", "list", "slow-init"]);
    assert!(ok && out.contains("READY"), "{out}");
    for target in ["slow-init:1", "slow-init:2"] {
        let got = calls(&s, target, 1);
        assert!(!got[0].1, "{target} has a provisioned instance: {got:?}");
    }

    // `describe` shows the aliases, every recent move (when, by whom) and what is up.
    let (ok, out, _) = s.cli(&["describe", "slow-init"]);
    assert!(ok, "{out}");
    for says in [
        "aliases",
        "history",
        "1:50%, 2:50%",
        "admin",
        "provisioned concurrency",
        "READY",
    ] {
        assert!(out.contains(says), "describe shows {says:?}: {out}");
    }

    // Refusals, each naming what is wrong.
    for (args, says) in [
        (
            ["provisioned", "set", "slow-init", "$LATEST", "1"],
            "not on $LATEST",
        ),
        (
            ["provisioned", "set", "slow-init", "beta", "1"],
            "no alias 'beta'",
        ),
        (
            ["provisioned", "set", "slow-init", "9", "1"],
            "no version 9",
        ),
        (
            ["provisioned", "set", "slow-init", "live", "0"],
            "out of range",
        ),
        (
            ["provisioned", "set", "slow-init", "1", "9"],
            "more than this function may run at once",
        ),
    ] {
        let (ok, _, err) = s.cli(&args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    }

    // The setting goes with its alias.
    assert!(s.cli(&["alias", "delete", "slow-init", "live"]).0);
    assert_eq!(status(&s, "slow-init"), serde_json::json!([]));

    // The function's own provisioned concurrency follows its latest version: a deploy
    // answers once the new version's instance is up, so the first call on it is warm.
    let (ok, _, err) = s.cli(&["config", "slow-init", "--provisioned", "1"]);
    assert!(ok, "{err}");
    common::set_description(&pkg, "v3");
    s.deploy(&pkg);
    let got = calls(&s, "slow-init", 1);
    assert_eq!(got[0].0, "3", "{got:?}");
    assert!(
        !got[0].1,
        "the first call on the new latest is warm: {got:?}"
    );
}

#[test]
fn boto3_sets_and_reads_provisioned_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (s, _) = two_versions(dir.path(), work.path(), "2");
    let (_, out, _) = s.cli(&["keys", "create", "ops", "--manage", "--json"]);
    let key = json(&out);
    let (_, out, _) = s.cli(&["keys", "create", "caller", "--json"]);
    let plain = json(&out);
    let (ok, text) = run_client(
        "lambda_provisioned.py",
        &[
            &s.url,
            key["access_key_id"].as_str().unwrap(),
            key["secret_access_key"].as_str().unwrap(),
            "slow-init",
            plain["access_key_id"].as_str().unwrap(),
            plain["secret_access_key"].as_str().unwrap(),
        ],
    );
    assert!(ok && text.contains("ok: "), "{text}");

    // An unsigned change is refused, even where unsigned calls would be allowed.
    let (code, body) = common::curl(&[
        "-X",
        "PUT",
        &format!(
            "{}/2019-09-30/functions/slow-init/provisioned-concurrency?Qualifier=1",
            s.url
        ),
        "-d",
        r#"{"ProvisionedConcurrentExecutions": 1}"#,
    ]);
    assert_eq!(code, 403, "{body}");
}
