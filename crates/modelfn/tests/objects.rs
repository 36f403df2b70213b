//! Buckets and object triggers end to end: `examples/batch-csv` turns an uploaded CSV
//! into batch predictions written beside it (equal to iris's own answers row by row); a
//! write and a delete reach a function as S3's event records; and a function can reach
//! only the buckets its `[permissions] buckets` grants, with no way out of a bucket by
//! its key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{copy_dir, curl, example, json, Server};
use std::time::{Duration, Instant};

use common::test_function as functions;

/// Waits for `bucket/key` and answers its body.
fn wait_for_object(s: &Server, target: &str) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, err) = s.cli(&["object", "get", target]);
        if ok {
            return out;
        }
        assert!(Instant::now() < until, "{target} never came: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_uploaded_csv_gets_its_batch_predictions_written_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.deploy(&example("iris"));
    s.deploy(&example("batch-csv"));
    let csv = example("batch-csv").join("flowers.csv");
    let (ok, out, err) = s.cli(&[
        "object",
        "put",
        "uploads/incoming/flowers.csv",
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("stored uploads/incoming/flowers.csv"), "{out}");
    let predictions = wait_for_object(&s, "uploads/incoming/flowers.predictions.csv");

    // Each row's prediction is iris's own answer for it.
    let input = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = input.lines().skip(1).collect();
    let lines: Vec<&str> = predictions.lines().collect();
    assert_eq!(lines[0], "sl,sw,pl,pw,prediction");
    assert_eq!(lines.len(), rows.len() + 1, "{predictions}");
    for (row, line) in rows.iter().zip(&lines[1..]) {
        let v: Vec<&str> = row.split(',').collect();
        let event = format!(
            "{{\"sl\": {}, \"sw\": {}, \"pl\": {}, \"pw\": {}}}",
            v[0], v[1], v[2], v[3]
        );
        let (code, _, body) =
            common::invoke(&format!("{}/v1/functions/iris/invoke", s.url), &event);
        assert_eq!(code, 200, "{body}");
        let want = json(&body)["prediction"].as_str().unwrap().to_string();
        assert_eq!(*line, format!("{row},{want}"));
    }
    // Its own output did not trigger another round of predictions.
    std::thread::sleep(Duration::from_millis(500));
    let (_, listing, _) = s.cli(&["object", "list", "uploads"]);
    assert_eq!(listing.lines().count(), 3, "{listing}");
}

#[test]
fn writes_and_deletes_reach_a_function_as_s3_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let audit = dir.path().join("audit");
    copy_dir(&functions("audit"), &audit);
    let manifest = std::fs::read_to_string(audit.join("modelfn.toml")).unwrap()
        + "\n[[objects]]\nbucket = \"uploads\"\nprefix = \"audit/\"\nevents = [\"created\", \"removed\"]\n";
    std::fs::write(audit.join("modelfn.toml"), manifest).unwrap();
    s.deploy(&audit);
    let file = dir.path().join("a b.txt");
    std::fs::write(&file, "hello").unwrap();
    let auth = format!("Authorization: Bearer {}", s.token());
    let url = format!("{}/v1/buckets/uploads/audit/a%20b.txt", s.url);
    let (code, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        &url,
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(code, 200, "{body}");
    let etag = json(&body)["etag"].as_str().unwrap().to_string();
    // Outside the prefix: no event.
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        &format!("{}/v1/buckets/uploads/other.txt", s.url),
        "-d",
        "x",
    ]);
    assert_eq!(code, 200);
    let (code, _) = curl(&["-X", "DELETE", "-H", &auth, &url]);
    assert_eq!(code, 204);
    let (code, body) = curl(&["-X", "DELETE", "-H", &auth, &url]);
    assert_eq!(code, 404, "{body}");

    let until = Instant::now() + Duration::from_secs(60);
    let records = loop {
        let (_, out, _) = s.cli(&["logs", "audit", "--grep", "AUDIT ", "--limit", "100"]);
        let records: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| l.split_once("AUDIT ").map(|(_, j)| json(j)))
            .collect();
        if records.len() >= 2 || Instant::now() > until {
            break records;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(records.len(), 2, "{records:?}");
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["Records"][0]["eventName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"ObjectCreated:Put") && names.contains(&"ObjectRemoved:Delete"),
        "{names:?}"
    );
    let created = records
        .iter()
        .find(|r| r["Records"][0]["eventName"] == "ObjectCreated:Put")
        .unwrap();
    let s3 = &created["Records"][0]["s3"];
    assert_eq!(s3["bucket"]["name"], "uploads");
    assert_eq!(s3["bucket"]["arn"], "arn:aws:s3:::uploads");
    assert_eq!(
        s3["object"]["key"], "audit/a+b.txt",
        "URL-encoded, as S3 sends it"
    );
    assert_eq!(s3["object"]["size"], 5);
    assert_eq!(s3["object"]["eTag"], etag.as_str());
    assert_eq!(created["Records"][0]["eventSource"], "aws:s3");
}

#[test]
fn a_function_reaches_only_the_buckets_it_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let auth = format!("Authorization: Bearer {}", s.token());
    for (key, body) in [("uploads/in/ok.txt", "open"), ("secrets/key.txt", "hidden")] {
        let (code, out) = curl(&[
            "-X",
            "PUT",
            "-H",
            &auth,
            &format!("{}/v1/buckets/{key}", s.url),
            "-d",
            body,
        ]);
        assert_eq!(code, 200, "{out}");
    }
    // Without the token, nothing.
    let (code, _) = curl(&[&format!("{}/v1/buckets/uploads/in/ok.txt", s.url)]);
    assert_eq!(code, 401);
    let (code, _) = curl(&[
        "-H",
        "Authorization: Bearer wrong",
        &format!("{}/v1/buckets/uploads", s.url),
    ]);
    assert_eq!(code, 401);

    let hostile = dir.path().join("hostile");
    copy_dir(&functions("hostile"), &hostile);
    let granted = std::fs::read_to_string(hostile.join("modelfn.toml")).unwrap()
        + "\n[permissions]\nbuckets = [\"uploads\"]\n";
    std::fs::write(hostile.join("modelfn.toml"), granted).unwrap();
    s.deploy(&hostile);
    let call = |method: &str, path: &str| -> (u64, String) {
        let event =
            format!("{{\"action\": \"call\", \"method\": \"{method}\", \"path\": \"{path}\"}}");
        let (code, _, body) =
            common::invoke(&format!("{}/v1/functions/hostile/invoke", s.url), &event);
        assert_eq!(code, 200, "{body}");
        let v = json(&body);
        (
            v["status"].as_u64().unwrap(),
            v["body"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (code, body) = call("GET", "/v1/buckets/uploads/in/ok.txt");
    assert_eq!((code, body.as_str()), (200, "open"));
    let (code, _) = call("GET", "/v1/buckets/uploads?prefix=in/");
    assert_eq!(code, 200);
    for (method, path, want) in [
        ("GET", "/v1/buckets/secrets/key.txt", 403),
        ("GET", "/v1/buckets/secrets", 403),
        ("GET", "/v1/buckets", 403),
        ("PUT", "/v1/buckets/secrets/planted.txt", 403),
        ("DELETE", "/v1/buckets/secrets/key.txt", 403),
        // Encoded or dotted ways out of the granted bucket.
        ("GET", "/v1/buckets/secr%65ts/key.txt", 403),
        ("GET", "/v1/buckets/uploads/..%2Fsecrets%2Fkey.txt", 400),
        ("GET", "/v1/buckets/uploads/%2E%2E/secrets/key.txt", 400),
        (
            "GET",
            "/v1/buckets/uploads/in/..%2F..%2Fsecrets/key.txt",
            400,
        ),
    ] {
        let (code, body) = call(method, path);
        assert_eq!(code, want, "{method} {path}: {body}");
        assert!(!body.contains("hidden"), "{method} {path}: {body}");
    }
    // The secret is still there, unchanged.
    let (code, body) = curl(&[
        "-H",
        &auth,
        &format!("{}/v1/buckets/secrets/key.txt", s.url),
    ]);
    assert_eq!((code, body.as_str()), (200, "hidden"));
    // A function granted nothing gets nothing.
    let plain = dir.path().join("plain");
    copy_dir(&functions("hostile"), &plain);
    let m = std::fs::read_to_string(plain.join("modelfn.toml"))
        .unwrap()
        .replace("name = \"hostile\"", "name = \"plain\"");
    std::fs::write(plain.join("modelfn.toml"), m).unwrap();
    s.deploy(&plain);
    let event = r#"{"action": "call", "method": "GET", "path": "/v1/buckets/uploads/in/ok.txt"}"#;
    let (_, _, body) = common::invoke(&format!("{}/v1/functions/plain/invoke", s.url), event);
    assert_eq!(json(&body)["status"], 403, "{body}");
}
