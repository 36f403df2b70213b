//! Versions and aliases end to end: every deploy is a version; aliases point at one or
//! split traffic by weight or by a sticky key; each door takes the alias as a qualifier
//! and reports the version that ran; bad moves are refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, example, header, invoke as post, Server};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

const ROW: &str = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;

/// Three versions of iris, told apart by their descriptions.
fn three_versions(s: &Server, work: &std::path::Path) {
    let pkg = work.join("iris");
    copy_dir(&example("iris"), &pkg);
    let manifest = std::fs::read_to_string(pkg.join("modelfn.toml")).unwrap();
    let body: String = manifest
        .lines()
        .filter(|l| !l.starts_with("description = "))
        .map(|l| format!("{l}\n"))
        .collect();
    for v in 1..=3 {
        std::fs::write(
            pkg.join("modelfn.toml"),
            format!("description = \"v{v}\"\n{body}"),
        )
        .unwrap();
        s.deploy(&pkg);
    }
}

/// A keep-alive HTTP/1.1 client: `n` POSTs of `ROW` to `path`, each with `headers`,
/// answering the `x-modelfn-version` of every response.
fn versions_of(addr: &str, path: &str, n: usize, headers: &str) -> Vec<String> {
    let stream = TcpStream::connect(addr).unwrap();
    // One write per request, sent at once (no Nagle wait on the delayed ACK).
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\n\r\n{ROW}",
            ROW.len()
        );
        writer.write_all(request.as_bytes()).unwrap();
        let (mut len, mut version, mut status) = (0usize, String::new(), String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length: ") {
                len = v.parse().unwrap();
            } else if let Some(v) = lower.strip_prefix("x-modelfn-version: ") {
                version = v.to_string();
            } else if lower.starts_with("http/1.1 ") {
                status = line.to_string();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        assert!(
            status.contains(" 200 "),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        out.push(version);
    }
    out
}

#[test]
fn aliases_route_by_weight_and_by_key_at_every_door() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // Unsigned Lambda calls keep the test about versions, not signatures.
    let s = Server::start_unsigned(dir.path());
    three_versions(&s, work.path());
    let (ok, out, err) = s.cli(&["versions", "iris"]);
    assert!(ok, "{err}");
    assert!(out.contains("3 ($LATEST)") && out.contains("v1"), "{out}");

    // One version: every door runs it and says so.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "2"]);
    assert!(ok, "{err}");
    let (code, h, body) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(
        (code, header(&h, "x-modelfn-version")),
        (200, Some("2")),
        "{body}"
    );
    let (code, h, body) = post(
        &format!(
            "{}/2015-03-31/functions/iris/invocations?Qualifier=prod",
            s.url
        ),
        ROW,
    );
    assert_eq!(
        (code, header(&h, "x-amz-executed-version")),
        (200, Some("2")),
        "{body}"
    );
    let (code, h, _) = post(&format!("{}/v1/functions/iris:1/invoke", s.url), ROW);
    assert_eq!((code, header(&h, "x-modelfn-version")), (200, Some("1")));
    let (code, h, _) = post(&format!("{}/v1/functions/iris/invoke", s.url), ROW);
    assert_eq!((code, header(&h, "x-modelfn-version")), (200, Some("3")));

    // Weights: 60/30/10 over 10,000 calls, each share within 3 points.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "split", "1:60,2:30,3:10"]);
    assert!(ok, "{err}");
    let addr = s.url.trim_start_matches("http://");
    let ran = versions_of(addr, "/v1/functions/iris:split/invoke", 10_000, "");
    let mut count: HashMap<String, usize> = HashMap::new();
    for v in ran {
        *count.entry(v).or_default() += 1;
    }
    for (v, want) in [("1", 60.0), ("2", 30.0), ("3", 10.0)] {
        let got = count.get(v).copied().unwrap_or(0) as f64 / 100.0;
        assert!(
            (got - want).abs() <= 3.0,
            "version {v}: {got}% for {want}% ({count:?})"
        );
    }

    // Sticky: one user, one version, every time; different users spread.
    let (ok, _, err) = s.cli(&[
        "alias",
        "set",
        "iris",
        "ab",
        "1:50,3:50",
        "--sticky",
        "header:x-user",
    ]);
    assert!(ok, "{err}");
    let mut spread = HashMap::new();
    for user in 0..40 {
        let got = versions_of(
            addr,
            "/v1/functions/iris:ab/invoke",
            5,
            &format!("x-user: user-{user}\r\n"),
        );
        assert!(got.iter().all(|v| *v == got[0]), "user-{user}: {got:?}");
        *spread.entry(got[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(spread.len(), 2, "40 users all on one version: {spread:?}");

    // Moves are listed, with their history; a moved alias serves the new version at once.
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "prod", "3"]);
    assert!(ok, "{err}");
    let (_, h, _) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("3"));
    let (ok, out, _) = s.cli(&["alias", "list", "iris"]);
    assert!(
        ok && out.contains("prod") && out.contains("history"),
        "{out}"
    );
    assert!(out.contains("2:100%") && out.contains("3:100%"), "{out}");

    // Refusals name what is wrong; nothing moves.
    for (args, why) in [
        (vec!["1:50,2:40"], "add up to 90"),
        (vec!["9"], "no version 9"),
        (vec!["1", "--sticky", "cookie:x"], "sticky"),
    ] {
        let mut a = vec!["alias", "set", "iris", "prod"];
        a.extend(args);
        let (ok, _, err) = s.cli(&a);
        assert!(!ok && err.contains(why), "{a:?}: {err}");
    }
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "42", "1"]);
    assert!(!ok && err.contains("not only digits"), "{err}");
    let (_, h, _) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(header(&h, "x-modelfn-version"), Some("3"));

    // A version an alias uses, or the latest, cannot be deleted; another can.
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "3"]);
    assert!(!ok && err.contains("is the latest"), "{err}");
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "1"]);
    assert!(!ok && err.contains("in use by aliases ab, split"), "{err}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "split", "2:60,3:40"]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "ab", "2:50,3:50"]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&["versions", "iris", "--delete", "1"]);
    assert!(ok, "{err}");
    let (code, _, body) = post(&format!("{}/v1/functions/iris:1/invoke", s.url), ROW);
    assert_eq!(code, 404, "{body}");
    let (ok, _, err) = s.cli(&["alias", "set", "iris", "old", "1"]);
    assert!(!ok && err.contains("no version 1"), "{err}");

    // API routes bind to an alias too; one naming an alias that does not exist is refused.
    let api = |target: &str| {
        let f = work.path().join("api.toml");
        let def = format!(
            "name = \"shop\"\n[[stages]]\nname = \"live\"\n[[routes]]\nmethod = \"POST\"\npath = \"/predict\"\nfunction = \"{target}\"\n"
        );
        std::fs::write(&f, def).unwrap();
        s.cli(&["api", "apply", f.to_str().unwrap()])
    };
    let (ok, _, err) = api("iris:nope");
    assert!(!ok && err.contains("no alias 'nope'"), "{err}");
    let (ok, _, err) = api("iris:prod");
    assert!(ok, "{err}");
    let (code, _, body) = post(&format!("{}/apis/shop/live/predict", s.url), ROW);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("virginica"), "{body}");

    // Deleted: the alias answers 404, naming it; the route bound to it says so too.
    let (ok, _, err) = s.cli(&["alias", "delete", "iris", "prod"]);
    assert!(ok, "{err}");
    let (code, _, body) = post(&format!("{}/v1/functions/iris:prod/invoke", s.url), ROW);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no alias 'prod'"), "{body}");
    let (code, _, body) = post(&format!("{}/apis/shop/live/predict", s.url), ROW);
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("no alias 'prod'"), "{body}");
}
