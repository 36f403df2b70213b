//! `--artifacts s3://bucket/prefix` end to end: servers keep their packages in a real
//! S3-protocol server (moto's server mode), and a
//! node that lost its unpacked code serves again from the bucket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{example, invoke, Server};
use moto::Moto;
use std::process::{Command, Stdio};

#[path = "../../modelfn-registry/tests/support/moto.rs"]
mod moto;

/// A modelfn command with the `AWS_*` settings of `moto`.
fn with_s3(moto: &Moto) -> Command {
    let mut cmd = Command::new(common::bin());
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test-key")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_REGION", "us-east-1");
    cmd
}

const IRIS: &str = r#"{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}"#;

fn predict(s: &Server) -> String {
    let (code, _, body) = invoke(&format!("{}/v1/functions/iris/invoke", s.url), IRIS);
    assert_eq!(code, 200, "{body}");
    body
}

#[test]
fn packages_live_in_the_bucket_and_come_back_from_it() {
    let moto = moto::start();
    moto::make_bucket(&moto, "models-eu");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let args = ["--artifacts", "s3://models-eu/prod/"];
    let s = Server::start_command(&data, &args, with_s3(&moto));
    s.deploy(&example("iris"));
    assert!(predict(&s).contains("virginica"));
    // The package is one object under the prefix, named by its digest; no local copy.
    let (stored, _) = moto::keys(&moto, "models-eu");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let digest = stored[0].strip_prefix("prod/blobs/sha256/").unwrap();
    assert_eq!(digest.len(), 64, "{stored:?}");
    assert!(!data.join("artifacts/blobs").exists());
    assert!(data.join("artifacts/code").join(digest).is_dir());
    s.stop();

    // The node loses its unpacked code; after a restart it fetches it from the bucket.
    std::fs::remove_dir_all(data.join("artifacts/code")).unwrap();
    let s = Server::start_command(&data, &args, with_s3(&moto));
    assert!(predict(&s).contains("virginica"));
    assert!(data.join("artifacts/code").join(digest).is_dir());
    s.stop();

    // A bad URL stops the server at start with the reason.
    let out = with_s3(&moto)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--artifacts", "s3://Models"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the bucket must be 3 to 63 lower-case"),
        "{err}"
    );
}
