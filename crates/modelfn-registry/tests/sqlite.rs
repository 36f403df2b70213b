//! The SQLite metadata store against a real database file: versions, reopen, delete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_registry::{MetadataStore, NewVersion, SqliteMetadataStore};

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
        let s = SqliteMetadataStore::open(&db).await.unwrap();
        assert_eq!(s.put_version(v("iris", "a")).await.unwrap().version, 1);
        let r = s.put_version(v("iris", "b")).await.unwrap();
        assert_eq!((r.version, r.code_sha256.as_str()), (2, "b"));
        s.put_version(v("digits", "c")).await.unwrap();
    }
    let s = SqliteMetadataStore::open(&db).await.unwrap();
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
async fn layers_are_versioned_and_events_saved() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    assert_eq!(
        s.put_layer("sklearn", "aa", 10, 100, "")
            .await
            .unwrap()
            .version,
        1
    );
    assert_eq!(
        s.put_layer("sklearn", "bb", 10, 120, "")
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        s.get_layer("sklearn", None)
            .await
            .unwrap()
            .unwrap()
            .code_sha256,
        "bb"
    );
    assert_eq!(
        s.get_layer("sklearn", Some(1))
            .await
            .unwrap()
            .unwrap()
            .code_sha256,
        "aa"
    );
    assert!(s.get_layer("sklearn", Some(3)).await.unwrap().is_none());
    assert_eq!(s.list_layers().await.unwrap().len(), 2);

    let mut with_layer = v("f", "c");
    with_layer.layers = vec![modelfn_registry::LayerRef {
        name: "sklearn".into(),
        version: 2,
        code_sha256: "bb".into(),
        unpacked_size: 120,
    }];
    assert_eq!(
        s.put_version(with_layer).await.unwrap().layers[0].version,
        2
    );
    s.put_event("f", "five", b"{\"num\": \"5\"}").await.unwrap();
    s.put_event("f", "five", b"{\"num\": \"6\"}").await.unwrap();
    s.put_event("f", "test", b"{}").await.unwrap();
    assert_eq!(
        s.get_event("f", "five").await.unwrap().unwrap(),
        b"{\"num\": \"6\"}"
    );
    assert_eq!(s.list_events("f").await.unwrap(), ["five", "test"]);
    s.delete("f").await.unwrap();
    assert!(
        s.list_events("f").await.unwrap().is_empty(),
        "events go with their function"
    );
}
