//! Functions in any language through the Lambda Runtime API, end to end: the real binary,
//! real Python handlers (under modelfn's own client and under `awslambdaric` from PyPI),
//! a real Rust function built with the `lambda_runtime` crate, layers built with pip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, curl, example, header, invoke, json, repo, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions")
        .join(name)
}

/// A copy of `from` whose manifest is edited by `edit`.
fn variant(work: &Path, from: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = work.join(name);
    copy_dir(from, &dir);
    let m = std::fs::read_to_string(dir.join("modelfn.toml")).unwrap();
    std::fs::write(dir.join("modelfn.toml"), edit(m)).unwrap();
    dir
}

fn publish_layer(s: &Server, name: &str) {
    let req = repo()
        .join("examples/layers")
        .join(name)
        .join("requirements.txt");
    let (ok, out, err) = s.cli(&[
        "layer",
        "publish",
        name,
        "--requirements",
        req.to_str().unwrap(),
    ]);
    assert!(ok, "publishing layer {name}: {out} {err}");
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// The same cases, whichever client runs the handler.
fn check_behaviours(s: &Server, name: &str) {
    let url = format!("{}/v1/functions/{name}/invoke", s.url);

    let (code, headers, body) = invoke(&url, r#"{"action": "context", "x": 1}"#);
    assert_eq!(code, 200, "{name}: {body}");
    let v = json(&body);
    assert_eq!(v["function_name"], name);
    assert_eq!(v["function_version"], "1");
    assert_eq!(v["memory_limit_in_mb"], "128");
    assert_eq!(
        v["aws_request_id"].as_str(),
        header(&headers, "x-modelfn-request-id"),
        "{headers}"
    );
    assert!(v["invoked_function_arn"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":function:{name}")));
    assert_eq!(v["log_group_name"], format!("/aws/lambda/{name}"));
    let remaining = v["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 1000, "remaining {remaining}");
    assert_eq!(v["event"]["x"], 1);

    let (_, _, body) = invoke(&url, r#"{"action": "env"}"#);
    let v = json(&body);
    let env = &v["env"];
    for k in [
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
    ] {
        assert!(
            env[k].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: {k} missing in {env}"
        );
    }
    assert_eq!(env["_HANDLER"], "lambda_function.lambda_handler");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], name);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["GREETING"], "hello");
    // The sandbox reaches this modelfn inside its own network namespace.
    assert_eq!(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:9000");
    assert_eq!(
        v["leaked"],
        serde_json::json!([]),
        "modelfn's own variables reached the function"
    );
    let token = s.token();
    assert!(
        !v["all_values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().contains(&token)),
        "the admin token reached the function"
    );
    assert_eq!(v["cwd"], env["LAMBDA_TASK_ROOT"]);
    if running_as_root() {
        assert!(
            v["uid"].as_u64().unwrap() >= 200_000,
            "functions run under uids of their own: {}",
            v["uid"]
        );
        assert_eq!(v["code_writable"], false, "code is read-only");
    }

    let (code, headers, body) = invoke(&url, r#"{"action": "raise"}"#);
    assert_eq!(code, 200, "function errors answer as Lambda does");
    assert_eq!(
        header(&headers, "x-modelfn-function-error"),
        Some("unhandled")
    );
    let v = json(&body);
    assert_eq!(
        (v["errorType"].as_str(), v["errorMessage"].as_str()),
        (Some("ValueError"), Some("boom: on purpose")),
        "{body}"
    );
    assert!(!v["stackTrace"].as_array().unwrap().is_empty(), "{body}");

    let (_, headers, body) = invoke(&url, r#"{"action": "unserializable"}"#);
    assert!(header(&headers, "x-modelfn-function-error").is_some());
    assert_eq!(json(&body)["errorType"], "Runtime.MarshalError", "{body}");

    let (_, headers, body) = invoke(&url, r#"{"action": "print", "lines": 3}"#);
    assert_eq!(json(&body), "printed");
    let id = header(&headers, "x-modelfn-request-id")
        .unwrap()
        .to_string();
    let (ok, out, err) = s.cli(&["logs", name, "--request-id", &id]);
    assert!(ok, "{err}");
    let pos = |needle: &str| {
        out.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not in logs:\n{out}"))
    };
    let (start, first, second, end, report) = (
        pos("START RequestId:"),
        pos(&format!("line 0 of {id}")),
        pos("to stderr"),
        pos("END RequestId:"),
        pos("REPORT RequestId:"),
    );
    assert!(
        start < first && first < end && second < end && end < report,
        "{out}"
    );
    assert!(
        out.contains("Billed Duration:") && out.contains("Memory Size: 128 MB"),
        "{out}"
    );
}

#[test]
fn python_handlers_behave_alike_under_modelfns_client_and_awslambdaric() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    publish_layer(&s, "awslambdaric");
    let own = variant(work.path(), &fixture("behaviours"), "own", |m| {
        m.replace("name = \"behaviours\"", "name = \"behave-own\"")
    });
    let ric = variant(work.path(), &fixture("behaviours"), "ric", |m| {
        m.replace("name = \"behaviours\"", "name = \"behave-ric\"")
            .replace(
                "timeout_ms = 1000",
                "timeout_ms = 1000\nruntime_client = \"awslambdaric\"\nlayers = [\"awslambdaric\"]",
            )
    });
    s.deploy(&own);
    s.deploy(&ric);
    check_behaviours(&s, "behave-own");
    check_behaviours(&s, "behave-ric");
}

#[test]
fn timeouts_crashes_kills_memory_and_import_errors_are_reported_and_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&fixture("behaviours"));
    let url = format!("{}/v1/functions/behaviours/invoke", s.url);
    let ok_and_cold = |why: &str| {
        let (code, headers, body) = invoke(&url, r#"{"action": "echo"}"#);
        assert_eq!(
            (code, header(&headers, "x-modelfn-function-error")),
            (200, None),
            "{why}: {body}"
        );
        assert_eq!(
            header(&headers, "x-modelfn-cold-start"),
            Some("true"),
            "{why}: a fresh instance"
        );
    };

    // A handler that sleeps past its timeout is killed; the next call gets a fresh instance.
    let (_, headers, body) = invoke(&url, r#"{"action": "sleep", "seconds": 5}"#);
    assert!(header(&headers, "x-modelfn-function-error").is_some());
    assert_eq!(json(&body)["errorType"], "Sandbox.Timedout");
    assert_eq!(
        json(&body)["errorMessage"],
        "Task timed out after 1.00 seconds"
    );
    ok_and_cold("after a timeout");

    // Input that cannot be decoded (too deep for Python's parser) and output that is not
    // JSON (NaN) are reported, and the instance lives on.
    let (_, _, body) = invoke(&url, r#"{"action": "echo"}"#);
    assert_eq!(json(&body)["echo"]["action"], "echo");
    let deep = "[".repeat(100_000);
    let (code, headers, body) = invoke(&url, &deep);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["errorType"], "Runtime.UnmarshalError", "{body}");
    assert!(header(&headers, "x-modelfn-function-error").is_some());
    let (_, _, body) = invoke(&url, r#"{"action": "nan"}"#);
    assert_eq!(json(&body)["errorType"], "Runtime.MarshalError", "{body}");
    let (_, headers, _) = invoke(&url, r#"{"action": "echo"}"#);
    assert_eq!(
        header(&headers, "x-modelfn-cold-start"),
        Some("false"),
        "the same instance serves on"
    );

    // A process that exits in the middle of an invocation.
    let (_, _, body) = invoke(&url, r#"{"action": "exit", "code": 7}"#);
    let v = json(&body);
    assert_eq!(v["errorType"], "Runtime.ExitError", "{body}");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Runtime exited with error: exit status 7"),
        "{body}"
    );
    ok_and_cold("after an exit");

    // A process killed from outside while idle is replaced.
    let (code, _, _) = invoke(&url, r#"{"action": "env"}"#);
    assert_eq!(code, 200);
    let pids = common::function_pids(&s, "behaviours");
    assert_eq!(pids.len(), 1, "one process of the function: {pids:?}");
    assert!(std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok_and_cold("after a kill");

    // Memory past memory_mb: stopped (cgroup) or refused (RLIMIT_AS), and reported.
    let (_, _, body) = invoke(&url, r#"{"action": "alloc", "mb": 2000}"#);
    let kind = json(&body)["errorType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        kind == "Runtime.OutOfMemory" || kind == "MemoryError",
        "{body}"
    );
    let (code, _, _) = invoke(&url, r#"{"action": "echo"}"#);
    assert_eq!(code, 200, "serving again after running out of memory");

    // An import error: refused at deploy; deployed anyway, reported by every invocation.
    let (ok, _, err) = s.cli(&["deploy", fixture("import-fail").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("Runtime.ImportModuleError") && err.contains("module_that_does_not_exist"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&[
        "deploy",
        "--no-validate",
        fixture("import-fail").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let bad = format!("{}/v1/functions/import-fail/invoke", s.url);
    for _ in 0..3 {
        let (code, headers, body) = invoke(&bad, "{}");
        assert_eq!(
            (code, header(&headers, "x-modelfn-function-error")),
            (200, Some("unhandled"))
        );
        assert_eq!(
            json(&body)["errorType"],
            "Runtime.ImportModuleError",
            "{body}"
        );
    }
    let (_, out, _) = s.cli(&["describe", "import-fail", "--json"]);
    assert_eq!(json(&out)["stats"]["invocations"], 3);
    // A fixed version replaces it.
    let fixed = variant(work.path(), &fixture("behaviours"), "fixed", |m| {
        m.replace("name = \"behaviours\"", "name = \"import-fail\"")
    });
    s.deploy(&fixed);
    assert_eq!(invoke(&bad, r#"{"action": "echo"}"#).0, 200);
}

#[test]
fn logs_show_init_duration_on_the_cold_start_only_and_test_events_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("addfive"));
    let url = format!("{}/v1/functions/addfive/invoke", s.url);
    assert_eq!(invoke(&url, r#"{"num": "15"}"#).2, "20");
    assert_eq!(invoke(&url, r#"{"num": "test"}"#).2, "0");
    // Seed 001's API: the query string mapped into the event.
    let (code, body) = curl(&[&format!("{url}?num=5")]);
    assert_eq!((code, body.as_str()), (200, "10"));
    let (_, out, _) = s.cli(&["logs", "addfive", "--since", "10m"]);
    let reports: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("REPORT RequestId:"))
        .collect();
    assert_eq!(reports.len(), 3, "{out}");
    assert!(reports[0].contains("Init Duration:"), "{out}");
    assert!(
        !reports[1].contains("Init Duration") && !reports[2].contains("Init Duration"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("START RequestId:"))
            .count(),
        3
    );

    // Saved test events, as in the console of seed 001; and events from files.
    let (ok, _, err) = s.cli(&[
        "events",
        "save",
        "addfive",
        "test_1",
        "--data",
        r#"{"num": "15"}"#,
    ]);
    assert!(ok, "{err}");
    s.cli(&[
        "events",
        "save",
        "addfive",
        "test_2",
        "--data",
        r#"{"num": "test"}"#,
    ]);
    let (_, out, _) = s.cli(&["events", "list", "addfive"]);
    assert_eq!(out, "test_1\ntest_2\n");
    let (ok, out, err) = s.cli(&["invoke", "addfive", "--event", "test_1"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "20");
    assert_eq!(
        s.cli(&["invoke", "addfive", "--event", "test_2"]).1.trim(),
        "0"
    );
    let (ok, _, err) = s.cli(&["invoke", "addfive", "--event", "nope"]);
    assert!(!ok && err.contains("no saved event 'nope'"), "{err}");
    let file = dir.path().join("event.json");
    std::fs::write(&file, r#"{"num": "37"}"#).unwrap();
    assert_eq!(
        s.cli(&["invoke", "addfive", "--event-file", file.to_str().unwrap()])
            .1
            .trim(),
        "42"
    );
    // A piped standard input is the event.
    let mut child = std::process::Command::new(common::bin())
        .args(["invoke", "addfive"])
        .env("MODELFN_SERVER", &s.url)
        .env("MODELFN_DATA_DIR", &s.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"num": "7"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "12\n");
}

#[test]
fn seed_handlers_run_unchanged_with_their_dependencies_in_layers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    publish_layer(&s, "sklearn");
    publish_layer(&s, "pillow");
    for e in [
        "iris-python",
        "breast-cancer-python",
        "digits",
        "digits-preprocess",
    ] {
        s.deploy(&example(e));
    }
    let url = |f: &str| format!("{}/v1/functions/{f}/invoke", s.url);
    let sample = |f: &str| std::fs::read_to_string(example(f).join("request.json")).unwrap();

    // Seed 003, verbatim: the Lambda console's answer.
    let (code, _, body) = invoke(&url("iris-python"), &sample("iris-python"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!({"statusCode": 200, "body": "virginica"})
    );

    // Seed 004: a function-URL-style event, and the body missing a feature.
    let (_, _, body) = invoke(
        &url("breast-cancer-python"),
        &sample("breast-cancer-python"),
    );
    let v = json(&body);
    assert_eq!(
        (v["reason"].as_str(), v["status"].as_str()),
        (Some("OK"), Some("200")),
        "{body}"
    );
    assert!(
        matches!(v["prediction"].as_i64(), Some(0) | Some(1)),
        "{body}"
    );
    let missing = r#"{"body": "{\"meanConcavePoints\": 0.07951, \"worstRadius\": 24.86, \"worstTexture\": 26.58, \"worstArea\": 1866.0}"}"#;
    let (_, _, body) = invoke(&url("breast-cancer-python"), missing);
    assert_eq!(
        json(&body),
        serde_json::json!({"reason": "'body' must contain values for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints", "prediction": "", "status": "400"})
    );

    // Seed 004's curl, unchanged, against the function's URL.
    let (ok, out, err) = s.cli(&["url", "create", "breast-cancer-python", "--auth", "none"]);
    assert!(ok, "{err}");
    let furl = out.split_whitespace().next().unwrap().to_string();
    let (code, body) = curl(&[
        "-X",
        "POST",
        &furl,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"meanConcavePoints": 0.07951, "worstRadius": 24.86, "worstTexture": 26.58, "worstArea": 1866.0, "worstConcavePoints": 0.01}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(
        (v["reason"].as_str(), v["status"].as_str()),
        (Some("OK"), Some("200")),
        "{body}"
    );
    let (_, body) = curl(&[
        "-X",
        "POST",
        &furl,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"meanConcavePoints": 0.07951}"#,
    ]);
    assert_eq!(json(&body)["reason"], "'body' must contain values for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints");

    // Seed 002: the PNG through the pre-processing function, chained to the native model.
    let (_, _, body) = invoke(&url("digits-preprocess"), &sample("digits-preprocess"));
    let want: Value =
        json(&std::fs::read_to_string(example("digits-preprocess").join("response.json")).unwrap());
    assert_eq!(json(&body), want);
    let (_, out, _) = s.cli(&["describe", "digits", "--json"]);
    assert_eq!(
        json(&out)["stats"]["invocations"],
        1,
        "the chained call reached the native model"
    );

    let (_, out, _) = s.cli(&["describe", "iris-python"]);
    assert!(
        out.contains("sklearn:1") && out.contains("with layers (limit 250.0 MB)"),
        "{out}"
    );
}

#[test]
fn a_rust_function_built_with_lambda_runtime_runs_as_provided() {
    let target = repo().join("target/rust-fn");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(example("rust-fn").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("cargo");
    assert!(status.success(), "building examples/rust-fn");
    let work = tempfile::tempdir().unwrap();
    let pkg = work.path().join("rust-fn");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::copy(
        example("rust-fn").join("modelfn.toml"),
        pkg.join("modelfn.toml"),
    )
    .unwrap();
    std::fs::copy(target.join("debug/bootstrap"), pkg.join("bootstrap")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&pkg);
    let url = format!("{}/v1/functions/rust-fn/invoke", s.url);
    let (code, headers, body) = invoke(&url, r#"{"name": "Ada"}"#);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["message"], "Hello, Ada!");
    assert_eq!(v["function_name"], "rust-fn");
    assert_eq!(v["memory_mb"], 128);
    assert_eq!(
        v["request_id"].as_str(),
        header(&headers, "x-modelfn-request-id")
    );
    let (_, headers, body) = invoke(&url, r#"{"fail": true}"#);
    assert!(header(&headers, "x-modelfn-function-error").is_some());
    assert_eq!(json(&body)["errorMessage"], "asked to fail");
    // A package without its bootstrap is refused with the reason.
    std::fs::remove_file(pkg.join("bootstrap")).unwrap();
    let (ok, _, err) = s.cli(&["deploy", pkg.to_str().unwrap()]);
    assert!(!ok && err.contains("no executable `bootstrap`"), "{err}");
}

#[test]
fn layer_and_package_sizes_are_checked_against_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "max_layer_mb = 1\nmax_unpacked_mb = 1\n").unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let work = tempfile::tempdir().unwrap();
    // Incompressible bytes, so that compressed and unpacked sizes are alike.
    let noise = |n: usize| -> Vec<u8> {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let layer = |name: &str, bytes: usize| {
        let d = work.path().join(name);
        std::fs::create_dir_all(d.join("python")).unwrap();
        std::fs::write(d.join("python/blob.bin"), noise(bytes)).unwrap();
        s.cli(&["layer", "publish", name, "--dir", d.to_str().unwrap()])
    };
    let (ok, _, err) = layer("huge", 1_500_000);
    assert!(
        !ok && err.contains("larger than the limit")
            && err.contains("(1.0 MB)")
            && err.contains("413"),
        "{err}"
    );
    assert!(layer("half-a", 600_000).0);
    // The same content again is the version that has it.
    let (ok, out, err) = layer("half-a", 600_000);
    assert!(ok && out.contains("version 1"), "{out} {err}");
    assert!(layer("half-b", 600_000).0);
    let f = variant(work.path(), &example("addfive"), "addfive", |m| {
        m + "layers = [\"half-a\", \"half-b\"]\n"
    });
    let (ok, _, err) = s.cli(&["deploy", f.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("the function and its layers unpack to 1.1 MB")
            && err.contains("layer half-a:1 0.6 MB")
            && err.contains("the limit is 1.0 MB"),
        "{err}"
    );
    let missing = variant(work.path(), &example("addfive"), "missing", |m| {
        m + "layers = [\"nope\"]\n"
    });
    let (ok, _, err) = s.cli(&["deploy", missing.to_str().unwrap()]);
    assert!(!ok && err.contains("layer 'nope' does not exist"), "{err}");
}

#[test]
fn function_urls_send_payload_2_events_and_keys_keep_strangers_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&fixture("behaviours"));
    s.deploy(&example("iris"));
    assert!(s.cli(&["url", "create", "behaviours", "--auth", "key"]).0);
    assert!(s.cli(&["url", "create", "iris"]).0);
    let base = format!("{}/urls/behaviours", s.url);
    // Without a key: 403, and the function is never invoked.
    let (code, _) = curl(&["-X", "POST", &format!("{base}/anything"), "-d", "{}"]);
    assert_eq!(code, 403);
    let (code, _) = curl(&[
        "-X",
        "POST",
        &format!("{base}/anything"),
        "-H",
        "x-api-key: wrong",
        "-d",
        "{}",
    ]);
    assert_eq!(code, 403);
    let (_, out, _) = s.cli(&["describe", "behaviours", "--json"]);
    assert_eq!(json(&out)["stats"]["invocations"], 0);
    let (_, out, _) = s.cli(&["keys", "create", "caller", "--json"]);
    let key = json(&out)["api_key"].as_str().unwrap().to_string();
    let id = json(&out)["access_key_id"].as_str().unwrap().to_string();
    let (ok, _, err) = s.cli(&[
        "plans",
        "create",
        "callers",
        "--rate",
        "100",
        "--burst",
        "100",
        "--target",
        "url:behaviours",
        "--key",
        &id,
    ]);
    assert!(ok, "{err}");
    let (code, body) = curl(&[
        "-X",
        "PUT",
        &format!("{base}/a/b?x=1&x=2"),
        "-H",
        &format!("x-api-key: {key}"),
        "-H",
        "Cookie: s=1; t=2",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"k": "v"}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let ev = &json(&body)["echo"];
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["rawPath"], "/a/b");
    assert_eq!(ev["rawQueryString"], "x=1&x=2");
    assert_eq!(ev["queryStringParameters"]["x"], "1,2");
    assert_eq!(ev["cookies"], serde_json::json!(["s=1", "t=2"]));
    assert_eq!(ev["requestContext"]["http"]["method"], "PUT");
    assert_eq!(ev["body"], r#"{"k": "v"}"#);
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(ev["headers"]["content-type"], "application/json");
    assert_eq!(
        ev["headers"].get("x-api-key"),
        None,
        "the caller's key is not forwarded"
    );
    // A model behind a URL reads the body as the native API does.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/urls/iris/", s.url),
        "-d",
        r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
    ]);
    assert_eq!(
        (code, json(&body)["prediction"].as_str()),
        (200, Some("virginica"))
    );
    // No URL, no function.
    assert_eq!(curl(&[&format!("{}/urls/addfive/", s.url)]).0, 404);
    assert!(s.cli(&["url", "delete", "iris"]).0);
    assert_eq!(
        curl(&[
            "-X",
            "POST",
            &format!("{}/urls/iris/", s.url),
            "-d",
            "[1,2,3,4]"
        ])
        .0,
        404
    );
}
