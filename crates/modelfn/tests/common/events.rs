//! Helpers of the asynchronous tests: a server with a config file, the admin API as JSON,
//! and events submitted and waited for.

use super::{curl, json, Server};
use std::path::Path;
use std::time::{Duration, Instant};

/// A server with `config` as its configuration file, its data under `dir`.
pub fn server(dir: &Path, config: &str) -> Server {
    let cfg = dir.join("cfg.toml");
    std::fs::write(&cfg, config).unwrap();
    Server::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap()])
}

/// `GET path` on the admin API, which must answer 200 with JSON.
pub fn admin(s: &Server, path: &str) -> serde_json::Value {
    let auth = format!("Authorization: Bearer {}", s.token());
    let (code, body) = curl(&["-H", &auth, &format!("{}{path}", s.url)]);
    assert_eq!(code, 200, "{path}: {body}");
    json(&body)
}

/// Accepts `event` for `function`; answers the request id.
pub fn submit(s: &Server, function: &str, event: &str) -> String {
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/v1/functions/{function}/invoke-async", s.url),
        "-d",
        event,
    ]);
    assert_eq!(code, 202, "{body}");
    json(&body)["request_id"].as_str().unwrap().to_string()
}

/// Waits until the event is in `state`; answers its status.
pub fn wait_for(s: &Server, id: &str, state: &str) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let st = admin(s, &format!("/v1/async/{id}"));
        if st["state"] == state || Instant::now() > until {
            assert_eq!(st["state"], state, "{st}");
            return st;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One function's queue as `GET /v1/async` counts it (null when it has none).
pub fn depth(s: &Server, function: &str) -> serde_json::Value {
    admin(s, "/v1/async")["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == function)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}
