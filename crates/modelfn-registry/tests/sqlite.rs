//! The SQLite metadata store against a real database file: what only a file shows
//! (versions survive reopening). The behaviour every store shares is in `conformance.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_registry::prelude::*;
use modelfn_registry::{NewVersion, SqlMetadataStore};

fn v(name: &str, sha: &str) -> NewVersion {
    NewVersion {
        name: name.into(),
        runtime: "onnx".into(),
        manifest: format!("name = \"{name}\""),
        code_sha256: sha.into(),
        code_size: 10,
        layers: vec![],
    }
}

#[tokio::test]
async fn versions_survive_reopening_and_delete_cascades() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    {
        let s = SqlMetadataStore::open(&db).await.unwrap();
        assert_eq!(s.put_version(v("iris", "a")).await.unwrap().version, 1);
        let r = s.put_version(v("iris", "b")).await.unwrap();
        assert_eq!((r.version, r.code_sha256.as_str()), (2, "b"));
        s.put_version(v("digits", "c")).await.unwrap();
    }
    let s = SqlMetadataStore::open(&db).await.unwrap();
    let names: Vec<String> = s
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["digits", "iris"]);
    assert_eq!(s.get("iris").await.unwrap().unwrap().version, 2);
    assert!(s.delete("iris").await.unwrap());
    assert!(!s.delete("iris").await.unwrap());
    assert!(s.get("iris").await.unwrap().is_none());
    // A function deployed again after delete starts over, as on Lambda.
    assert_eq!(s.put_version(v("iris", "d")).await.unwrap().version, 1);
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_not_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    let s = SqlMetadataStore::open(&db).await.unwrap();
    s.put_version(v("iris", "a")).await.unwrap();
    let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE function_versions SET layers = 'not json' WHERE function = 'iris'")
        .execute(&raw)
        .await
        .unwrap();
    // Once "no layers" in silence; now the record says what is wrong.
    let e = s.get("iris").await.unwrap_err().to_string();
    assert!(e.contains("layers recorded for 'iris'"), "{e}");
    sqlx::query("UPDATE function_versions SET layers = '[]', code_size = -1")
        .execute(&raw)
        .await
        .unwrap();
    assert!(s.list().await.is_err(), "a negative size is refused");
}
