//! Isolation, attacked: a hostile function (`tests/functions/hostile`) tries every way
//! out of its sandbox against a warm victim and against the server, and each attempt must
//! fail. These are the tests behind the claims of SECURITY.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{call, copy_dir, header, peak_rss_kb, run_client, Server};
use serde_json::json;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions")
        .join(name)
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The hostile function deployed under `name`, with `extra` appended to its manifest.
fn deploy_hostile(s: &Server, work: &Path, name: &str, extra: &str) {
    let dir = work.join(name);
    copy_dir(&fixture("hostile"), &dir);
    let m = std::fs::read_to_string(dir.join("modelfn.toml")).unwrap();
    let m = m.replace("name = \"hostile\"", &format!("name = \"{name}\""));
    std::fs::write(dir.join("modelfn.toml"), format!("{m}{extra}")).unwrap();
    s.deploy(&dir);
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_hostile_function_cannot_reach_its_neighbour_or_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    deploy_hostile(
        &s,
        work.path(),
        "victim",
        "\n[environment]\nVICTIM_SECRET = \"s3cr3t-of-the-victim\"\n",
    );
    deploy_hostile(&s, work.path(), "attacker", "");

    // A warm victim with a secret in its environment and in its /tmp.
    call(
        &s,
        "victim",
        json!({"action": "remember", "secret": "tmp-s3cr3t"}),
    );
    let (_, victim) = call(&s, "victim", json!({"action": "probe"}));

    let data = dir.path();
    let paths: Vec<String> = [
        data.join("modelfn.db"),
        data.join("modelfn.db-wal"),
        data.join("modelfn.db-shm"),
        data.join("admin-token"),
        data.join("artifacts"),
        data.join("logs/victim.log"),
        PathBuf::from("/tmp/secret-of-victim"),
        PathBuf::from("/proc/1/environ"),
        PathBuf::from("/etc/shadow"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let (_, r) = call(
        &s,
        "attacker",
        json!({
            "action": "probe",
            "secret": "s3cr3t-of-the-victim",
            "paths": paths,
            "ports": [port(&s.url)],
        }),
    );

    let attacker_key = r["key"].clone();
    // No view of the victim: its pid, environment and temporary files.
    // Only its own sandbox's processes: pid 1 (the version's snap-start template), itself,
    // and, once prepared, the next instance waiting in its template's sandbox.
    let pids = r["pids"].as_array().unwrap();
    assert!(
        pids.len() <= 3 && pids[..2] == [json!(1), json!(2)],
        "only its own sandbox's processes: {pids:?}"
    );
    assert_eq!(r["secret_seen_in"], json!([]), "{r}");
    assert_eq!(r["tmp"], json!([]), "its own, empty /tmp: {r}");
    // Nothing of the server's data directory, nor host secrets.
    for (path, outcome) in r["paths"].as_object().unwrap() {
        assert_ne!(outcome, "read", "{path} was readable from a sandbox");
    }
    // The server's port is unreachable from the sandbox's network namespace.
    assert_eq!(
        r["connect"][port(&s.url).to_string()],
        "ConnectionRefusedError",
        "{r}"
    );
    // Debugging, namespaces and mounts are refused by the seccomp profile (EPERM).
    assert_eq!(
        (&r["ptrace"], &r["unshare_user"], &r["mount"]),
        (&json!(1), &json!(1), &json!(1)),
        "{r}"
    );
    // Nor another process's memory; no privileges can be gained; the filter is on.
    assert_eq!(r["process_vm_readv"], 1, "EPERM: {r}");
    assert_eq!(r["status"]["NoNewPrivs"], "1", "{r}");
    assert_eq!(r["status"]["Seccomp"], "2", "filter mode: {r}");
    assert_eq!(r["status"]["CapEff"], "0000000000000000", "{r}");
    // kill(-1, SIGKILL) reaches nothing outside the sandbox: with no sibling it finds no
    // process at all; a sibling prepared ahead by the template is the only one it may
    // reach (pid 1, the template, never). The victim is checked untouched below.
    let expected = if pids.len() == 3 {
        "sent"
    } else {
        "ProcessLookupError"
    };
    assert_eq!(r["kill_all"], expected, "{r}");
    if running_as_root() {
        assert_ne!(r["uid"], victim["uid"], "each function has its own uid");
        assert!(r["uid"].as_u64().unwrap() >= 200_000, "{r}");
        assert_eq!(r["dev_shm"], "written", "its own /dev/shm");
        assert_eq!(
            r["status"]["CapBnd"], "0000000000000000",
            "no capability can come back: {r}"
        );
    }

    // modelfn's API from inside the sandbox: only what the manifest grants (nothing).
    for path in [
        "/v1/functions/victim/invoke",
        "/2015-03-31/functions/victim/invocations",
        "/endpoints/victim/invocations",
        "/v1/functions",
        "/v1/keys",
    ] {
        let (_, r) = call(&s, "attacker", json!({"action": "call", "path": path}));
        assert_eq!(r["status"], 403, "{path}: {r}");
    }
    let (_, r) = call(
        &s,
        "attacker",
        json!({"action": "call", "path": "/v1/functions", "method": "GET"}),
    );
    assert_eq!(r["status"], 403, "listing functions: {r}");
    // A function granted `invoke = ["victim"]` may invoke it, and nothing else.
    deploy_hostile(
        &s,
        work.path(),
        "friend",
        "\n[permissions]\ninvoke = [\"victim\"]\n",
    );
    let (_, r) = call(
        &s,
        "friend",
        json!({"action": "call", "path": "/v1/functions/victim/invoke"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let (_, r) = call(
        &s,
        "friend",
        json!({"action": "call", "path": "/v1/functions/attacker/invoke"}),
    );
    assert_eq!(r["status"], 403, "{r}");

    // The friend's own key, leaked and used from outside, is held to the same grants.
    let (_, r) = call(&s, "friend", json!({"action": "probe"}));
    let (id, secret) = (r["key"][0].as_str().unwrap(), r["key"][1].as_str().unwrap());
    assert_ne!(r["key"], attacker_key, "each function has its own key");
    let (ok, text) = run_client(
        "lambda_denied.py",
        &[&s.url, id, secret, "attacker", "victim"],
    );
    assert!(ok, "{text}");

    // The victim is untouched: still warm, its secret still in its own /tmp.
    let (headers, v) = call(&s, "victim", json!({"action": "probe"}));
    assert_eq!(header(&headers, "x-modelfn-cold-start"), Some("false"));
    assert_eq!(v["tmp"], json!(["secret-of-victim"]));

    // Private files of the data directory are private on the host too.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "",
        "modelfn.db",
        "modelfn.db-wal",
        "modelfn.db-shm",
        "admin-token",
    ] {
        let mode = std::fs::metadata(data.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f:?} has mode {mode:o}");
    }
}

/// Host pids of processes whose command line is exactly `cmd`.
fn pids_running(cmd: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let line = std::fs::read(e.path().join("cmdline")).ok()?;
            (String::from_utf8_lossy(&line).replace('\0', " ").trim() == cmd).then_some(pid)
        })
        .collect()
}

#[test]
fn every_process_of_an_instance_is_contained_and_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    deploy_hostile(&s, work.path(), "forkbomb", "");

    // Forks past the pids limit (1024 per instance) fail inside the function.
    let (_, r) = call(&s, "forkbomb", json!({"action": "fork", "n": 2000}));
    if running_as_root() {
        let started = r["started"].as_u64().unwrap();
        assert!(started < 1024, "{r}");
        assert!(r["failed"].as_u64().unwrap() >= 2000 - 1024, "{r}");
    }

    // A grandchild in a session of its own dies with the instance.
    let (_, r) = call(&s, "forkbomb", json!({"action": "setsid", "seconds": 4242}));
    assert_eq!(r, "started");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(pids_running("sleep 4242").len(), 1, "the grandchild runs");
    let (ok, _, err) = s.cli(&["delete", "forkbomb"]);
    assert!(ok, "{err}");
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        pids_running("sleep 4242").is_empty()
    });
    assert!(gone, "a setsid grandchild outlived its deleted function");

    // A process forked by `bootstrap` before anything else is in the instance's cgroup.
    if running_as_root() {
        s.deploy(&fixture("forker"));
        let (_, r) = call(&s, "forker", json!({}));
        assert_eq!(r, "forked");
        // The child may not have exec'd `sleep` yet when the call answers: wait up to 3 s.
        let mut pids = pids_running("sleep 1001");
        for _ in 0..30 {
            if !pids.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            pids = pids_running("sleep 1001");
        }
        assert!(!pids.is_empty(), "bootstrap's child runs");
        for pid in &pids {
            let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
            let memory = cg
                .lines()
                .find(|l| l.contains(":memory:") || l.starts_with("0::"));
            assert!(
                memory.is_some_and(|l| l.contains("/modelfn-")),
                "pid {pid} escaped its cgroup: {cg}"
            );
        }
        // The server's stop takes them all.
        let _ = s.stop();
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            pids.iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        });
        assert!(gone, "processes outlived the server");
    }
}

#[test]
fn tmp_is_sized_and_output_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    deploy_hostile(&s, work.path(), "filler", "");

    // /tmp is a 64 MB tmpfs of the sandbox's own: writing past it fails inside.
    let (_, r) = call(&s, "filler", json!({"action": "fill_tmp"}));
    assert_eq!(r["errno"], 28, "ENOSPC: {r}");
    assert!(r["written_mb"].as_u64().unwrap() <= 64, "{r}");

    // 512 MB printed without a newline: the server holds at most a 256 KB line of it.
    let before = peak_rss_kb(s.child.id());
    let (_, r) = call(&s, "filler", json!({"action": "spew", "mb": 512}));
    assert_eq!(r, "spewed");
    let grown_mb = (peak_rss_kb(s.child.id()) - before) / 1024;
    assert!(grown_mb < 64, "the server grew by {grown_mb} MB");
    let (ok, out, err) = s.cli(&["logs", "filler"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("[line cut: "),
        "the long line is cut and says so"
    );
}
