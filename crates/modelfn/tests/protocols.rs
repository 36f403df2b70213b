//! The protocols users' tools already speak, driven by those tools against the real
//! binary: boto3's Lambda and SageMaker runtime clients (signing with a modelfn access
//! key), tritonclient over the Open Inference Protocol, curl over KServe V1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{client_python, example, repo, run_client, Server};

#[test]
fn boto3_invokes_native_and_python_functions_through_the_lambda_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    s.deploy(&example("addfive"));
    s.deploy(&repo().join("crates/modelfn/tests/functions/behaviours"));
    let (ok, _, err) = s.cli(&[
        "deploy",
        example("addfive").to_str().unwrap(),
        "--name",
        "addfive-stopped",
    ]);
    assert!(ok, "{err}");
    assert!(
        s.cli(&["config", "addfive-stopped", "--reserved-concurrency", "0"])
            .0
    );
    let (ok, out, err) = s.cli(&["keys", "create", "tests", "--json"]);
    assert!(ok, "{err}");
    let key = common::json(&out);
    let (id, secret) = (
        key["access_key_id"].as_str().unwrap(),
        key["secret_access_key"].as_str().unwrap(),
    );
    assert!(
        id.starts_with("MFN") && id.len() == 20 && secret.len() == 40,
        "{out}"
    );
    let (_, listed, _) = s.cli(&["keys", "list", "--json"]);
    assert!(
        listed.contains(id) && !listed.contains(secret),
        "secrets are never listed: {listed}"
    );

    let (ok, text) = run_client("lambda_boto3.py", &[&s.url, id, secret]);
    assert!(ok && text.contains("OK "), "{text}");

    // Unsigned requests are refused unless the server is told otherwise.
    let (code, body) = common::curl(&[
        "-X",
        "POST",
        &format!("{}/2015-03-31/functions/addfive/invocations", s.url),
        "-d",
        "{}",
    ]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("not signed"), "{body}");
    // A deleted key stops working.
    assert!(s.cli(&["keys", "delete", id]).0);
    assert!(!run_client("lambda_boto3.py", &[&s.url, id, secret]).0);
}

#[test]
fn boto3_invokes_models_as_sagemaker_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for f in ["cancer-linear", "iris", "addfive"] {
        s.deploy(&example(f));
    }
    let (_, out, _) = s.cli(&["keys", "create", "sagemaker", "--json"]);
    let key = common::json(&out);
    let csv = example("cancer-linear").join("request.csv");
    let (ok, text) = run_client(
        "sagemaker_boto3.py",
        &[
            &s.url,
            key["access_key_id"].as_str().unwrap(),
            key["secret_access_key"].as_str().unwrap(),
            csv.to_str().unwrap(),
        ],
    );
    assert!(ok && text.contains("OK "), "{text}");
}

#[test]
fn seed_000s_handler_calls_the_native_model_through_boto3_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let req = repo().join("examples/layers/boto3/requirements.txt");
    let (ok, _, err) = s.cli(&[
        "layer",
        "publish",
        "boto3",
        "--requirements",
        req.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    s.deploy(&example("cancer-linear"));
    s.deploy(&example("cancer-lambda"));
    let row = std::fs::read_to_string(example("cancer-linear").join("request.csv")).unwrap();
    // The seed's API: a GET whose event is {"data": "13.49,22.3,...,0.06917"}.
    let url = format!("{}/v1/functions/cancer-lambda/invoke", s.url);
    let (code, body) = common::curl(&[
        "--get",
        &url,
        "--data-urlencode",
        &format!("data={}", row.trim()),
    ]);
    assert_eq!(code, 200, "{body}");
    let native = common::curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/cancer-linear/invoke", s.url),
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        row.trim(),
    ])
    .1;
    let want = common::json(&native)["prediction"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        common::json(&body),
        serde_json::json!(want),
        "the handler's M/B matches the model's label"
    );
    let (_, out, _) = s.cli(&["describe", "cancer-linear", "--json"]);
    assert_eq!(
        common::json(&out)["stats"]["invocations"],
        2,
        "one call from boto3 inside the function, one from the test"
    );
}

#[test]
fn tritonclient_gets_the_reference_answers_over_the_open_inference_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let host = s.url.trim_start_matches("http://").to_string();
    let refs = example("iris").join("references.json");
    let (ok, text) = run_client("oip_tritonclient.py", &[&host, refs.to_str().unwrap()]);
    assert!(ok && text.contains("OK "), "{text}");
    // KServe V1.
    let (code, body) = common::curl(&[
        "-X",
        "POST",
        &format!("{}/v1/models/iris:predict", s.url),
        "-d",
        r#"{"instances": [[6.9, 3.1, 5.1, 2.3], [5.1, 3.5, 1.4, 0.2]]}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let v = common::json(&body);
    assert_eq!(
        (
            v["predictions"][0]["prediction"].as_str(),
            v["predictions"][1]["prediction"].as_str()
        ),
        (Some("virginica"), Some("setosa"))
    );
    let (code, body) = common::curl(&[&format!("{}/v2/models/nope", s.url)]);
    assert_eq!(code, 404);
    assert!(common::json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("not found"));
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation_in_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("iris"));
    let st = client_python().with_file_name("st");
    let out = std::process::Command::new(st)
        .arg("run")
        .arg(format!("{}/openapi.json", s.url))
        .args(["-H", &format!("Authorization: Bearer {}", s.token())])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
        .args(["-n", "20", "--seed", "1"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("passed") && !text.contains("failed"),
        "{text}"
    );
    // The server still serves after the fuzzing.
    let (code, _) = common::curl(&[&format!(
        "{}/v1/functions/iris/invoke?sl=1&sw=2&pl=3&pw=4",
        s.url
    )]);
    assert_eq!(code, 200);
}

#[test]
fn the_aws_cli_invokes_a_function() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("addfive"));
    let (_, out, _) = s.cli(&["keys", "create", "cli", "--json"]);
    let key = common::json(&out);
    let result = dir.path().join("out.json");
    let aws = client_python().with_file_name("aws");
    let out = std::process::Command::new(aws)
        .args(["lambda", "invoke", "--function-name", "addfive"])
        .args([
            "--payload",
            r#"{"num": "15"}"#,
            "--log-type",
            "Tail",
            "--endpoint-url",
            &s.url,
        ])
        .arg(&result)
        .env("AWS_ACCESS_KEY_ID", key["access_key_id"].as_str().unwrap())
        .env(
            "AWS_SECRET_ACCESS_KEY",
            key["secret_access_key"].as_str().unwrap(),
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "20");
    let v = common::json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (v["StatusCode"].as_i64(), v["ExecutedVersion"].as_str()),
        (Some(200), Some("1")),
        "{text}"
    );
    assert!(
        v["LogResult"].as_str().is_some_and(|l| !l.is_empty()),
        "{text}"
    );
}

#[test]
fn boto3_sees_an_alias_as_an_endpoint_with_production_variants() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let pkg = work.path().join("iris");
    common::copy_dir(&example("iris"), &pkg);
    for v in 1..=3 {
        common::set_description(&pkg, &format!("v{v}"));
        s.deploy(&pkg);
    }
    assert!(s.cli(&["alias", "set", "iris", "prod", "1:60,2:30,3:10"]).0);
    let (_, out, _) = s.cli(&["keys", "create", "ops", "--manage", "--json"]);
    let key = common::json(&out);
    let id = key["access_key_id"].as_str().unwrap();
    let (_, out, _) = s.cli(&["keys", "create", "caller", "--json"]);
    let plain = common::json(&out);
    let (ok, text) = run_client(
        "sagemaker_variants.py",
        &[
            &s.url,
            id,
            key["secret_access_key"].as_str().unwrap(),
            plain["access_key_id"].as_str().unwrap(),
            plain["secret_access_key"].as_str().unwrap(),
        ],
    );
    assert!(ok && text.contains("OK "), "{text}");
    // The moves are in the alias's history, under the key that made them.
    let (ok, out, _) = s.cli(&["alias", "list", "iris"]);
    assert!(ok && out.contains(id), "{out}");
}
