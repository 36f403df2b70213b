//! The server end to end: bad requests, the admin API and its token, atomic deploys,
//! restarts, the CLI, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, curl, example, json, Server};
use std::path::Path;

#[test]
fn bad_requests_get_a_4xx_with_a_reason_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let url = format!("{}/v1/functions/iris/invoke", s.url);
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 7 * 1024 * 1024]).unwrap();
    let big_arg = format!("@{}", big.display());
    let json_ct = "Content-Type: application/json";
    let cases: Vec<(Vec<&str>, u16, &str)> = vec![
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": "x", "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
            ],
            400,
            "input 'sl' must be a number",
        ),
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": true, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
            ],
            400,
            "got a boolean",
        ),
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": NaN, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
            ],
            400,
            "not valid JSON",
        ),
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": "NaN", "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
            ],
            400,
            "finite",
        ),
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": "Infinity", "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
            ],
            400,
            "finite",
        ),
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": 1e400, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
            ],
            400,
            "not valid JSON",
        ),
        (
            vec!["-H", json_ct, "-d", "this is not json"],
            400,
            "not valid JSON",
        ),
        (vec!["-H", json_ct, "--data-binary", ""], 400, "empty"),
        (
            vec![
                "-H",
                json_ct,
                "-d",
                r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3, "color": "red"}"#,
            ],
            400,
            "unknown input 'color'",
        ),
        (
            vec!["-H", json_ct, "-d", "[1, 2]"],
            400,
            "must have 4 values",
        ),
        (
            vec!["-H", json_ct, "--data-binary", &big_arg],
            413,
            "larger than the limit",
        ),
        (
            // No length given: the limit is counted as the body arrives.
            vec![
                "-H",
                json_ct,
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &big_arg,
            ],
            413,
            "larger than the limit",
        ),
        (
            vec!["-H", "Content-Type: application/xml", "-d", "<iris/>"],
            415,
            "unsupported content type",
        ),
        (
            vec!["-H", "Content-Type: text/csv", "-d", "1,2,x,4"],
            400,
            "is not a number",
        ),
    ];
    for (args, want_code, want_msg) in cases {
        let mut full = vec!["-X", "POST", url.as_str()];
        full.extend(args.iter().copied());
        let (code, body) = curl(&full);
        assert_eq!(code, want_code, "{args:?} -> {body}");
        let msg = json(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            msg.contains(want_msg),
            "{args:?}: {msg:?} lacks {want_msg:?}"
        );
        // Still serving.
        let (code, body) = curl(&[
            "-X",
            "POST",
            &url,
            "-H",
            json_ct,
            "-d",
            "[6.9, 3.1, 5.1, 2.3]",
        ]);
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/nope/invoke", s.url),
        "-d",
        "{}",
    ]);
    assert_eq!(
        (code, json(&body)["error"]["type"].as_str().unwrap()),
        (404, "FunctionNotFound")
    );
    let (code, _) = curl(&[&format!("{}/no/such/route", s.url)]);
    assert_eq!(code, 404);
    // A name the front door cannot take as it is (percent-encoded) goes through the
    // router, which answers it alike.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/ir%69s/invoke", s.url),
        "-H",
        json_ct,
        "-d",
        "[6.9, 3.1, 5.1, 2.3]",
    ]);
    assert_eq!(
        (code, json(&body)["prediction"].as_str().unwrap()),
        (200, "virginica")
    );
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/n%6Fpe/invoke", s.url),
        "-d",
        "{}",
    ]);
    assert_eq!(
        (code, json(&body)["error"]["type"].as_str().unwrap()),
        (404, "FunctionNotFound")
    );
    // curl -d without a content type sends a form: JSON in it is read as JSON, a form as fields.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &url,
        "-d",
        r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
    ]);
    assert_eq!(
        (code, json(&body)["prediction"].as_str().unwrap()),
        (200, "virginica")
    );
    let (code, body) = curl(&["-X", "POST", &url, "-d", "sl=6.9&sw=3.1&pl=5.1&pw=2.3"]);
    assert_eq!(
        (code, json(&body)["prediction"].as_str().unwrap()),
        (200, "virginica")
    );
}

#[test]
fn admin_api_requires_the_token_which_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let list = format!("{}/v1/functions", s.url);
    assert_eq!(curl(&[&list]).0, 401);
    assert_eq!(curl(&["-H", "Authorization: Bearer wrong", &list]).0, 401);
    let (code, body) = curl(&["-H", &format!("Authorization: Bearer {}", s.token()), &list]);
    assert_eq!(
        (code, json(&body)["functions"].as_array().unwrap().len()),
        (200, 0)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Invocation stays open in this release; health endpoints too.
    assert_eq!(curl(&[&format!("{}/healthz", s.url)]).0, 200);
    assert_eq!(curl(&[&format!("{}/readyz", s.url)]).0, 200);
    // Deploying garbage is refused with a reason.
    let auth = format!("Authorization: Bearer {}", s.token());
    let (code, body) = curl(&[
        "-X",
        "POST",
        &list,
        "-H",
        &auth,
        "-H",
        "Content-Type: application/gzip",
        "-d",
        "not a tarball",
    ]);
    assert_eq!(code, 400, "{body}");
    assert!(json(&body)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a gzip-compressed tar"));
    let (code, _) = curl(&[
        "-X",
        "POST",
        &format!("{list}?name=bad/name"),
        "-H",
        &auth,
        "-H",
        "Content-Type: application/gzip",
        "-d",
        "x",
    ]);
    assert_eq!(code, 400);
}

#[test]
fn failed_deploys_leave_the_old_version_serving_and_restarts_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let url = format!("{}/v1/functions/iris/invoke", s.url);
    let ask = |url: &str| {
        curl(&[
            "-X",
            "POST",
            url,
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
        ])
    };
    assert_eq!(ask(&url).0, 200);

    // A copy of the iris example with one file changed.
    let m = std::fs::read_to_string(example("iris").join("modelfn.toml")).unwrap();
    let variant = |name: &str, file: &str, contents: &[u8]| {
        let d = work.path().join(name);
        copy_dir(&example("iris"), &d);
        std::fs::write(d.join(file), contents).unwrap();
        d
    };
    let refused = |dir: &Path, why: &str| {
        let (ok, _, err) = s.cli(&["deploy", dir.to_str().unwrap()]);
        assert!(!ok, "{} was deployed", dir.display());
        assert!(err.contains(why), "{err}");
    };
    // A model that does not load; a manifest with a typo; labels that disagree with the model.
    refused(
        &variant("broken", "model.onnx", b"definitely not onnx"),
        "does not load in ONNX Runtime",
    );
    let typo = m.replace("timeout_ms", "timeout_msec");
    refused(
        &variant("typo", "modelfn.toml", typo.as_bytes()),
        "unknown field `timeout_msec`",
    );
    let labels = m.replace("\"virginica\"", "\"virginica\", \"extra\"");
    refused(
        &variant("labels", "modelfn.toml", labels.as_bytes()),
        "model.labels names 4 classes but the model has 3",
    );

    let (code, body) = ask(&url);
    assert_eq!(
        (code, json(&body)["prediction"].as_str().unwrap()),
        (200, "virginica")
    );
    let (_, out, _) = s.cli(&["describe", "iris", "--json"]);
    assert_eq!(json(&out)["version"], 1, "no failed deploy made a version");

    // Same code again: unchanged. A real change: version 2.
    let (_, out, _) = s.cli(&["deploy", example("iris").to_str().unwrap()]);
    assert!(out.starts_with("unchanged iris version 1"), "{out}");
    let v2 = variant(
        "v2",
        "modelfn.toml",
        m.replace("timeout_ms = 3000", "timeout_ms = 5000")
            .as_bytes(),
    );
    let (_, out, _) = s.cli(&["deploy", v2.to_str().unwrap()]);
    assert!(out.starts_with("deployed iris version 2"), "{out}");
    s.deploy(&example("digits"));
    let status = s.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");

    let s = Server::start(dir.path());
    let url = format!("{}/v1/functions/iris/invoke", s.url);
    let (code, body) = ask(&url);
    assert_eq!(
        (code, json(&body)["prediction"].as_str().unwrap()),
        (200, "virginica")
    );
    let (ok, out, _) = s.cli(&["list"]);
    assert!(ok);
    assert!(out.contains("digits") && out.contains("iris"), "{out}");
    let (_, out, _) = s.cli(&["describe", "iris", "--json"]);
    let d = json(&out);
    assert_eq!(
        (d["version"].as_u64(), d["timeout_ms"].as_u64()),
        (Some(2), Some(5000))
    );
}

#[test]
fn the_cli_deploys_invokes_describes_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("breast-cancer"));
    let (ok, out, err) = s.cli(&["invoke", "breast-cancer", "--data", r#"{"meanConcavePoints": 0.07951, "worstRadius": 24.86, "worstTexture": 26.58, "worstArea": 1866.0, "worstConcavePoints": 0.01}"#]);
    assert!(ok, "{err}");
    assert!(json(&out)["prediction"].is_i64(), "{out}");
    let (ok, _, err) = s.cli(&["invoke", "breast-cancer", "--data", r#"{"worstRadius": 1}"#]);
    assert!(!ok);
    assert!(
        err.contains("'body' must contain values for") && err.contains("400"),
        "{err}"
    );
    let event = dir.path().join("event.csv");
    std::fs::write(&event, "0.07951,24.86,26.58,1866.0,0.01\n").unwrap();
    let (ok, out, err) = s.cli(&[
        "invoke",
        "breast-cancer",
        "--content-type",
        "text/csv",
        "--data",
        &format!("@{}", event.display()),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("prediction"));
    let (ok, out, _) = s.cli(&["describe", "breast-cancer"]);
    assert!(ok);
    assert!(
        out.contains("meanConcavePoints, worstRadius") && out.contains("warm"),
        "{out}"
    );
    assert!(
        out.contains("cold starts") && out.contains("128 MB"),
        "{out}"
    );
    let (ok, out, _) = s.cli(&["list"]);
    assert!(
        ok && out.starts_with("NAME") && out.contains("breast-cancer"),
        "{out}"
    );
    let (ok, _, _) = s.cli(&["delete", "breast-cancer"]);
    assert!(ok);
    let (ok, _, err) = s.cli(&["delete", "breast-cancer"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, _, err) = s.cli(&["invoke", "breast-cancer", "--data", "{}"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = Server::cli(&s, &["deploy", "/nonexistent"]);
    assert!(!ok && err.contains("has no modelfn.toml"), "{err}");

    // An upload shows its progress on a terminal (`script` gives the CLI one), and only
    // there: a pipe gets no redrawn lines.
    let pkg = dir.path().join("big");
    common::copy_dir(&example("iris"), &pkg);
    // Bytes gzip cannot shrink (xorshift), so the package stays 3 MB.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..3_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(pkg.join("noise.bin"), noise).unwrap();
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} deploy {}", common::bin(), pkg.display()),
            "/dev/null",
        ])
        .env("MODELFN_SERVER", &s.url)
        .env("MODELFN_DATA_DIR", &s.data_dir)
        .output()
        .expect("script (util-linux) must be installed");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("uploading ") && tty.contains("% ") || tty.contains("%)"),
        "{tty}"
    );
    assert!(
        tty.contains("\r\x1b[2K") && tty.contains("uploaded ") && tty.contains("3.0 MB"),
        "{tty}"
    );
    let (ok, out, err) = s.cli(&["deploy", pkg.to_str().unwrap()]);
    assert!(
        ok && !err.contains('\r') && !out.contains('\r'),
        "{out}{err}"
    );
}

#[test]
fn cold_start_is_reported_once_then_warm() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let url = format!("{}/v1/functions/iris/invoke?sl=1&sw=2&pl=3&pw=4", s.url);
    let headers = |url: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", url])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    };
    let first = headers(&url);
    assert!(first.contains("x-modelfn-cold-start: true"), "{first}");
    assert!(first.contains("x-modelfn-init-duration-ms:"), "{first}");
    let second = headers(&url);
    assert!(second.contains("x-modelfn-cold-start: false"), "{second}");
    assert!(!second.contains("x-modelfn-init-duration-ms"), "{second}");
}

#[test]
fn without_onnx_runtime_the_server_runs_and_deploys_say_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &["--ort-library", "/nonexistent/libonnxruntime.so"],
    );
    assert_eq!(curl(&[&format!("{}/healthz", s.url)]).0, 200);
    let (ok, _, err) = s.cli(&["deploy", example("iris").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("ORT_DYLIB_PATH") && err.contains("/nonexistent/libonnxruntime.so"),
        "{err}"
    );
    let (_, out, _) = s.cli(&["list"]);
    assert!(out.contains("no functions deployed"), "{out}");
}
