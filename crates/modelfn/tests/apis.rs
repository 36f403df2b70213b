//! APIs with stages and routes, end to end with curl: seed 001's `/PRD/addfive` mapping,
//! seed 003's GET mapping template, proxy events 1.0 and 2.0, malformed proxy results,
//! keys, CORS, route timeouts, and APIs surviving a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{curl, example, json, repo, Server};

fn apply(s: &Server, text: &str) -> (bool, String, String) {
    let f = s.data_dir.join(format!("api-{}.toml", text.len()));
    std::fs::write(&f, text).unwrap();
    s.cli(&["api", "apply", f.to_str().unwrap()])
}

#[test]
fn seed_apis_map_query_strings_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("addfive"));
    s.deploy(&example("iris"));
    let (ok, out, err) = s.cli(&[
        "api",
        "apply",
        repo().join("examples/apis/calc.toml").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("/apis/calc/PRD"), "{out}");
    // S4: GET /PRD/addfive?num=5 → 10, ?num=test → 0.
    let base = format!("{}/apis/calc/PRD", s.url);
    assert_eq!(
        curl(&[&format!("{base}/addfive?num=5")]),
        (200, "10".to_string())
    );
    assert_eq!(
        curl(&[&format!("{base}/addfive?num=test")]),
        (200, "0".to_string())
    );
    assert_eq!(
        curl(&[&format!("{}/apis/calc/DEV/addfive?num=5", s.url)]).0,
        404
    );
    assert_eq!(
        curl(&["-X", "POST", &format!("{base}/addfive"), "-d", "{}"]).0,
        404,
        "only GET is routed"
    );
    // S1: the seed's mapping template, verbatim, in front of the native model.
    let iris = std::fs::read_to_string(repo().join("examples/apis/iris.toml"))
        .unwrap()
        .replace("iris-python", "iris");
    assert!(apply(&s, &iris).0);
    let (code, body) = curl(&[&format!(
        "{}/apis/iris/prod/?sl=6.9&sw=3.1&pl=5.1&pw=2.3",
        s.url
    )]);
    assert_eq!(
        (code, json(&body)["prediction"].as_str()),
        (200, Some("virginica")),
        "{body}"
    );
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/apis/iris/prod/", s.url),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#,
    ]);
    assert_eq!(
        (code, json(&body)["prediction"].as_str()),
        (200, Some("virginica")),
        "{body}"
    );
    // Bad definitions are refused with the reason; templates with line and column.
    let (ok, _, err) = apply(&s, "name = \"x\"\n[[stages]]\nname = \"a\"\n[[routes]]\nmethod = \"GET\"\npath = \"/\"\nfunction = \"addfive\"\nintegration = \"mapping\"\nrequest_template = '''\n{\n  \"a\": \"$input.params('a')\",\n  #set($x = 1)\n}'''\n");
    assert!(
        !ok && err.contains(
            "routes[0].request_template: line 3, column 3: the directive #set is not supported"
        ),
        "{err}"
    );
    let (ok, _, err) = apply(&s, "name = \"x\"\n[[stages]]\nname = \"a\"\n[[routes]]\nmethod = \"GET\"\npath = \"/\"\nfunction = \"nope\"\n");
    assert!(
        !ok && err.contains("function 'nope' does not exist"),
        "{err}"
    );
    // APIs survive a restart.
    let status = s.stop();
    assert!(status.success());
    let s = Server::start(dir.path());
    assert_eq!(
        curl(&[&format!("{}/apis/calc/PRD/addfive?num=37", s.url)]),
        (200, "42".to_string())
    );
}

#[test]
fn proxy_routes_send_1_0_and_2_0_events_and_map_results() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&repo().join("crates/modelfn/tests/functions/behaviours"));
    let def = r#"
name = "shop"
[cors]
allow_origins = ["https://app.example"]
[[stages]]
name = "v1"
variables = { tier = "gold" }
[[routes]]
method = "ANY"
path = "/items/{id}"
function = "behaviours"
[[routes]]
method = "POST"
path = "/v2/{proxy+}"
function = "behaviours"
payload_version = "2.0"
[[routes]]
method = "GET"
path = "/private"
function = "behaviours"
auth = "key"
[[routes]]
method = "POST"
path = "/slow"
function = "behaviours"
integration = "mapping"
timeout_ms = 300
[[routes]]
method = "POST"
path = "/raise"
function = "behaviours"
integration = "mapping"
[[routes]]
method = "POST"
path = "/small"
function = "behaviours"
max_body_bytes = 1000
"#;
    let (ok, _, err) = apply(&s, def);
    assert!(ok, "{err}");
    let base = format!("{}/apis/shop/v1", s.url);
    // 1.0: the handler echoes the event; a result without statusCode is malformed → 502.
    let (code, body) = curl(&[
        "-X",
        "PUT",
        &format!("{base}/items/42?q=1&q=2"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"k": 1}"#,
    ]);
    assert_eq!(
        (code, json(&body)["message"].as_str()),
        (502, Some("Internal server error")),
        "{body}"
    );
    // 2.0: the result is inferred as JSON with 200; the event is the HTTP API shape.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{base}/v2/a/b?x=1"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"k": 1}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let ev = &json(&body)["echo"];
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "POST /v2/{proxy+}");
    assert_eq!(ev["pathParameters"]["proxy"], "a/b");
    assert_eq!(ev["stageVariables"]["tier"], "gold");
    assert_eq!(ev["requestContext"]["stage"], "v1");
    assert_eq!(ev["rawPath"], "/v2/a/b");
    // Behind a mapping route, a function error comes back as 200 with its JSON.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{base}/raise"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"action": "raise"}"#,
    ]);
    assert_eq!(
        (code, json(&body)["errorType"].as_str()),
        (200, Some("ValueError")),
        "{body}"
    );
    // Keys.
    assert_eq!(curl(&[&format!("{base}/private")]).0, 403);
    let (_, out, _) = s.cli(&["keys", "create", "shop", "--json"]);
    let secret = json(&out)["secret_access_key"]
        .as_str()
        .unwrap()
        .to_string();
    let key = json(&out)["api_key"].as_str().unwrap().to_string();
    // The SigV4 secret is not an API key.
    let (code, _) = curl(&[
        "-H",
        &format!("x-api-key: {secret}"),
        &format!("{base}/private"),
    ]);
    assert_eq!(code, 403, "a SigV4 secret used as x-api-key");
    // A valid key works only where a usage plan holding it applies.
    let (code, body) = curl(&[
        "-H",
        &format!("x-api-key: {key}"),
        &format!("{base}/private"),
    ]);
    assert_eq!(code, 403, "a key in no plan of the stage: {body}");
    assert!(body.contains("not in a usage plan of shop/v1"), "{body}");
    let id = json(&out)["access_key_id"].as_str().unwrap().to_string();
    let (ok, _, err) = s.cli(&[
        "plans", "create", "shop", "--rate", "100", "--burst", "100", "--target", "shop/v1",
        "--key", &id,
    ]);
    assert!(ok, "{err}");
    let (code, body) = curl(&[
        "-H",
        &format!("x-api-key: {key}"),
        &format!("{base}/private"),
    ]);
    assert_eq!(
        code, 502,
        "reached the function (whose 1.0 result is malformed): {body}"
    );
    // The route's own timeout (300 ms) is shorter than the function's (1 s).
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{base}/slow"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"action": "sleep", "seconds": 0.8}"#,
    ]);
    assert_eq!(
        (code, json(&body)["message"].as_str()),
        (504, Some("Endpoint request timed out")),
        "{body}"
    );
    // CORS: a preflight from an allowed origin, and the header on answers.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "OPTIONS",
            &format!("{base}/items/1"),
            "-H",
            "Origin: https://app.example",
            "-H",
            "Access-Control-Request-Method: PUT",
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        head.starts_with("http/1.1 204")
            && head.contains("access-control-allow-origin: https://app.example")
            && head.contains("access-control-allow-methods"),
        "{head}"
    );
    // A route's own body limit: a declared length over it is refused before the body is
    // sent (curl waits for `100 Continue` and uploads nothing); an undeclared (chunked)
    // one is cut off at the limit. Both are answered 413 naming the route's limit.
    let big = "x".repeat(2000);
    for framing in ["Expect: 100-continue", "Transfer-Encoding: chunked"] {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "30", "--expect100-timeout", "10"])
            .args(["-w", "\n%{http_code} %{size_upload}", "-H", framing])
            .args(["--data-binary", &big, &format!("{base}/small")])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (answer, tail) = text.rsplit_once('\n').unwrap();
        let (code, sent) = tail.split_once(' ').unwrap();
        assert_eq!(code, "413", "{framing}: {answer}");
        assert!(
            answer.contains("limit of this route is 1000 bytes"),
            "{answer}"
        );
        if framing.starts_with("Expect") {
            assert_eq!(sent, "0", "{framing}: the body was asked for");
        }
    }
}

#[test]
fn keys_and_usage_plans_guard_the_digits_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.deploy(&example("digits"));
    let def = "name = \"digits\"\n[[stages]]\nname = \"prod\"\n[[routes]]\nmethod = \"POST\"\npath = \"/predict\"\nfunction = \"digits\"\nauth = \"key\"\n";
    assert!(apply(&s, def).0);
    assert!(s.cli(&["url", "create", "digits", "--auth", "key"]).0);
    let key = |name: &str| {
        let (_, out, _) = s.cli(&["keys", "create", name, "--json"]);
        let v = json(&out);
        (
            v["access_key_id"].as_str().unwrap().to_string(),
            v["api_key"].as_str().unwrap().to_string(),
        )
    };
    let (paid_id, paid) = key("paid");
    let (_, stranger) = key("stranger");
    let (ok, _, err) = s.cli(&[
        "plans",
        "create",
        "basic",
        "--rate",
        "0.001",
        "--burst",
        "2",
        "--target",
        "digits/prod",
        "--key",
        &paid_id,
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = s.cli(&[
        "plans",
        "create",
        "tiny",
        "--rate",
        "1000",
        "--burst",
        "100",
        "--quota",
        "3",
        "--target",
        "url:digits",
        "--key",
        &paid_id,
    ]);
    assert!(ok, "{err}");
    let row = std::fs::read_to_string(example("digits").join("request.json")).unwrap();
    let api = format!("{}/apis/digits/prod/predict", s.url);
    let post = |url: &str, key: Option<&str>| {
        let header = format!("x-api-key: {}", key.unwrap_or(""));
        let mut args = vec![
            "-X",
            "POST",
            url,
            "-H",
            "Content-Type: application/json",
            "-d",
            row.trim(),
        ];
        if key.is_some() {
            args.extend(["-H", header.as_str()]);
        }
        curl(&args)
    };
    // Without a key, or with a key outside the plan: 403, and the model never runs.
    assert_eq!(post(&api, None).0, 403);
    assert_eq!(post(&api, Some(&stranger)).0, 403);
    let (_, out, _) = s.cli(&["describe", "digits", "--json"]);
    assert_eq!(json(&out)["stats"]["invocations"], 0);
    // The plan's burst of 2, then 429 with Retry-After.
    assert_eq!(post(&api, Some(&paid)).0, 200);
    assert_eq!(post(&api, Some(&paid)).0, 200);
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-X",
            "POST",
            &api,
            "-H",
            &format!("x-api-key: {paid}"),
            "-d",
            row.trim(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.starts_with("http/1.1 429") && text.contains("retry-after:"),
        "{text}"
    );
    // The URL's plan: a quota of 3.
    let url = format!("{}/urls/digits/", s.url);
    for _ in 0..3 {
        assert_eq!(post(&url, Some(&paid)).0, 200);
    }
    let (code, body) = post(&url, Some(&paid));
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("quota"), "{body}");
    let (_, out, _) = s.cli(&["keys", "usage", &paid_id]);
    assert!(
        out.trim().ends_with(" 5"),
        "two API calls and three URL calls: {out}"
    );
}
