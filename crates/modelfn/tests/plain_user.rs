//! modelfn run by a plain user (as it is on a laptop): bubblewrap then sandboxes each
//! instance in an unprivileged user namespace. A burst of 64 cold starts at once must all
//! start: the socket helper has to join the user namespace that owns the sandbox's network
//! namespace, which bubblewrap may have left for a nested one by the time it looks (under
//! load, about 1 start in 5 failed with `EPERM` before this was fixed).
//!
//! Run as root, the test starts the server as `nobody` (65534) with `setpriv`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{bin, copy_dir, example, Server};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn a_plain_users_server_starts_64_sandboxes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let pkg = dir.path().join("monte-carlo");
    copy_dir(&example("monte-carlo"), &pkg);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.arg(bin());
        c
    } else {
        Command::new(bin())
    };
    cmd.env("HOME", &home);
    let s = Server::start_command(&dir.path().join("data"), &[], cmd);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    assert!(
        !uid.split_whitespace().nth(1).unwrap().eq("0"),
        "the server runs as root: {uid}"
    );
    s.deploy(&pkg);
    let items = dir.path().join("items.jsonl");
    let lines: Vec<String> = (0..300)
        .map(|i| format!("{{\"seed\": {i}, \"samples\": 1000}}"))
        .collect();
    std::fs::write(&items, lines.join("\n")).unwrap();
    let (ok, _, err) = s.cli(&[
        "map",
        "monte-carlo",
        "-i",
        items.to_str().unwrap(),
        "-c",
        "64",
        "--retries",
        "0",
        "-o",
        "/dev/null",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("300 items, 300 succeeded, 0 failed"), "{err}");
    println!("as {uid}: {}", err.trim());
}
