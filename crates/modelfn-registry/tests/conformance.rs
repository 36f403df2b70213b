//! Conformance suites written against the traits (`&dyn MetadataStore`,
//! `&dyn ArtifactStore`), not against a backend: every backend runs the same checks. They
//! run here against SQLite and the local directory; a PostgreSQL or S3 backend adds one
//! line each below.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelfn_registry::package::pack_dir;
use modelfn_registry::{
    ArtifactStore, LocalArtifactStore, MetadataStore, NewVersion, PackageLimits, RegistryError,
    SqliteMetadataStore,
};

fn version(name: &str, sha: &str) -> NewVersion {
    NewVersion {
        name: name.into(),
        runtime: "onnx".into(),
        manifest: format!("name = \"{name}\""),
        code_sha256: sha.into(),
        code_size: 10,
        layers: vec![],
    }
}

/// What every metadata store must do.
async fn metadata_conformance(s: &dyn MetadataStore) {
    // Versions count from 1 per function; the latest serves; delete cascades and a
    // function made again starts over.
    assert_eq!(s.put_version(version("a", "1")).await.unwrap().version, 1);
    assert_eq!(s.put_version(version("a", "2")).await.unwrap().version, 2);
    assert_eq!(s.put_version(version("b", "3")).await.unwrap().version, 1);
    assert_eq!(s.get("a").await.unwrap().unwrap().code_sha256, "2");
    let names: Vec<String> = s
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b"], "listed by name");
    s.put_event("a", "e", b"{}").await.unwrap();
    s.put_config("a", "{\"keep_alive\": \"1s\"}").await.unwrap();
    assert!(s.delete("a").await.unwrap());
    assert!(!s.delete("a").await.unwrap());
    assert!(s.get("a").await.unwrap().is_none());
    assert!(s.list_events("a").await.unwrap().is_empty());
    assert!(s.get_config("a").await.unwrap().is_none());
    assert_eq!(s.put_version(version("a", "4")).await.unwrap().version, 1);

    // Layers: versions per name, the latest by default.
    assert_eq!(s.put_layer("l", "x", 1, 2, "").await.unwrap().version, 1);
    assert_eq!(s.put_layer("l", "y", 1, 2, "").await.unwrap().version, 2);
    assert_eq!(
        s.get_layer("l", None).await.unwrap().unwrap().code_sha256,
        "y"
    );
    assert_eq!(
        s.get_layer("l", Some(1))
            .await
            .unwrap()
            .unwrap()
            .code_sha256,
        "x"
    );
    assert!(s.get_layer("l", Some(9)).await.unwrap().is_none());
    assert_eq!(s.list_layers().await.unwrap().len(), 2);
    // A version records the layers it was deployed with.
    let mut with_layer = version("c", "5");
    with_layer.layers = vec![modelfn_registry::LayerRef {
        name: "l".into(),
        version: 2,
        code_sha256: "y".into(),
        unpacked_size: 2,
    }];
    s.put_version(with_layer).await.unwrap();
    let c = s.get("c").await.unwrap().unwrap();
    assert_eq!((c.layers.len(), c.layers[0].version), (1, 2));

    // Events are replaced by name.
    s.put_event("b", "e", b"1").await.unwrap();
    s.put_event("b", "e", b"2").await.unwrap();
    assert_eq!(s.get_event("b", "e").await.unwrap().unwrap(), b"2");
    assert!(s.get_event("b", "nope").await.unwrap().is_none());

    // Access keys: the secret as stored, replaceable; the API key by its hash only.
    s.put_access_key("K1", "one", "sealed-1", "hash-1")
        .await
        .unwrap();
    s.put_access_key("K2", "two", "sealed-2", "").await.unwrap();
    assert_eq!(
        s.access_key_secret("K1").await.unwrap().unwrap(),
        "sealed-1"
    );
    s.update_access_key_secret("K1", "sealed-1b").await.unwrap();
    assert_eq!(
        s.access_key_secret("K1").await.unwrap().unwrap(),
        "sealed-1b"
    );
    assert_eq!(
        s.access_key_by_secret_hash("hash-1")
            .await
            .unwrap()
            .as_deref(),
        Some("K1")
    );
    assert!(
        s.access_key_by_secret_hash("").await.unwrap().is_none(),
        "no API key is no match"
    );
    let keys: Vec<String> = s
        .list_access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(s.delete_access_key("K1").await.unwrap());
    assert!(s.access_key_secret("K1").await.unwrap().is_none());

    // URLs, plans and APIs: put replaces, delete answers whether it existed.
    s.put_url("b", "key").await.unwrap();
    s.put_url("b", "none").await.unwrap();
    assert_eq!(
        s.list_urls().await.unwrap(),
        [("b".to_string(), "none".to_string())]
    );
    assert!(s.delete_url("b").await.unwrap());
    assert!(!s.delete_url("b").await.unwrap());
    s.put_plan("p", "{}").await.unwrap();
    s.put_plan("p", "{\"rate\": 1}").await.unwrap();
    assert_eq!(s.list_plans().await.unwrap()[0].1, "{\"rate\": 1}");
    assert!(s.delete_plan("p").await.unwrap());
    s.put_api("x", "name = \"x\"").await.unwrap();
    assert_eq!(s.list_apis().await.unwrap().len(), 1);
    assert!(s.delete_api("x").await.unwrap());
    assert!(s.list_apis().await.unwrap().is_empty());
}

/// What every artifact store must do.
async fn artifact_conformance(s: &dyn ArtifactStore, work: &std::path::Path) {
    let src = work.join("fn");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("modelfn.toml"), "name = \"f\"").unwrap();
    std::fs::write(src.join("sub/data.bin"), [7u8; 100]).unwrap();
    let archive = pack_dir(&src).unwrap();
    let limits = PackageLimits::default();
    // Stored by content: the same package twice is one digest and one directory.
    let (d1, dir1, u) = s.put_package(archive.clone(), limits).await.unwrap();
    let (d2, dir2, _) = s.put_package(archive, limits).await.unwrap();
    assert_eq!((d1.len(), &d1), (64, &d2));
    assert_eq!(dir1, dir2);
    assert_eq!((u.files, u.unpacked_bytes), (2, 110));
    assert_eq!(
        std::fs::read(dir1.join("sub/data.bin")).unwrap(),
        [7u8; 100]
    );
    // The unpacked directory comes back after it is lost.
    std::fs::remove_dir_all(&dir1).unwrap();
    let again = s.code_dir(&d1).await.unwrap();
    assert_eq!(
        std::fs::read(again.join("modelfn.toml")).unwrap(),
        b"name = \"f\""
    );
    // Unknown digests and bad packages are errors, not panics.
    assert!(s.code_dir(&"0".repeat(64)).await.is_err());
    let e = s
        .put_package(b"not a package".to_vec(), limits)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::InvalidPackage(_)), "{e}");
}

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    metadata_conformance(&store).await;
}

#[tokio::test]
async fn the_local_directory_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        LocalArtifactStore::new(dir.path().join("artifacts"), PackageLimits::default()).unwrap();
    artifact_conformance(&store, dir.path()).await;
}
