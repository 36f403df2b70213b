//! Conformance suites written against the traits (`&dyn MetadataStore`,
//! `&dyn BlobStore`), not against a backend: every backend runs the same checks. They
//! run here against SQLite and a real PostgreSQL (`support/postgres.rs`), the local
//! directory and an S3 bucket (on moto's server). The node-local code cache is checked
//! over every blob store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use modelfn_registry::blobs::digest_of;
use modelfn_registry::package::pack_dir;
use modelfn_registry::prelude::*;
use modelfn_registry::{
    AliasRecord, Backend, BlobStore, Change, ChangeKind, CodeCache, DocRecord, LocalBlobStore,
    MetadataStore, NewVersion, PackageLimits, ProvisionedRecord, RegistryError, ShadowTarget,
    SqlMetadataStore, UrlAuth, UrlRecord, VersionDeleted,
};
use std::sync::Arc;

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
    s.put_access_key("K1", "one", "sealed-1", "hash-1", true)
        .await
        .unwrap();
    s.put_access_key("K2", "two", "sealed-2", "", false)
        .await
        .unwrap();
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
    let keys: Vec<(String, String)> = s
        .list_access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id, k.name))
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&("K2".into(), "two".into())));
    assert!(s.delete_access_key("K1").await.unwrap());
    assert!(s.access_key_secret("K1").await.unwrap().is_none());

    // URLs, plans and APIs: put replaces, delete answers whether it existed.
    let url = |auth| UrlRecord {
        qualifier: None,
        function: "b".into(),
        auth,
    };
    s.put_url(&url(UrlAuth::Key)).await.unwrap();
    s.put_url(&url(UrlAuth::None)).await.unwrap();
    assert_eq!(s.list_urls().await.unwrap(), [url(UrlAuth::None)]);
    assert!(s.delete_url("b").await.unwrap());
    assert!(!s.delete_url("b").await.unwrap());
    let doc = |name: &str, definition: &str| DocRecord {
        name: name.into(),
        definition: definition.into(),
    };
    s.put_plan(&doc("p", "{}")).await.unwrap();
    s.put_plan(&doc("p", "{\"rate\": 1}")).await.unwrap();
    assert_eq!(s.list_plans().await.unwrap(), [doc("p", "{\"rate\": 1}")]);
    assert!(s.delete_plan("p").await.unwrap());
    s.put_api(&doc("x", "name = \"x\"")).await.unwrap();
    assert_eq!(s.list_apis().await.unwrap().len(), 1);
    assert!(s.delete_api("x").await.unwrap());
    assert!(s.list_apis().await.unwrap().is_empty());
}

/// The change log every store keeps: each write to desired state, numbered in order.
async fn change_log_conformance(s: &dyn MetadataStore) {
    let start = s.changes_since(0, 100_000).await.unwrap();
    assert!(start.complete, "{start:?}");
    let g0 = start.generation;
    let none = s.changes_since(g0, 10).await.unwrap();
    assert!(none.complete && none.changes.is_empty() && none.generation == g0);
    s.put_version(version("f", "1")).await.unwrap();
    s.put_config("f", "{}").await.unwrap();
    s.put_url(&UrlRecord {
        function: "f".into(),
        auth: UrlAuth::Key,
        qualifier: Some("prod".into()),
    })
    .await
    .unwrap();
    s.put_access_key("K9", "k", "sealed", "", false)
        .await
        .unwrap();
    s.put_plan(&DocRecord {
        name: "p".into(),
        definition: "{}".into(),
    })
    .await
    .unwrap();
    s.delete_api("nope").await.unwrap();
    s.delete("f").await.unwrap();
    // Layers and test events are not desired state of a node: no change.
    s.put_layer("l9", "x", 1, 1, "").await.unwrap();
    s.put_event("g", "e", b"{}").await.ok();
    let all = s.changes_since(g0, 1000).await.unwrap();
    let kinds: Vec<(u64, ChangeKind, &str)> = all
        .changes
        .iter()
        .map(|c| (c.generation - g0, c.kind, c.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, ChangeKind::Function, "f"),
            (2, ChangeKind::Config, "f"),
            (3, ChangeKind::Url, "f"),
            (4, ChangeKind::Key, "K9"),
            (5, ChangeKind::Plan, "p"),
            (6, ChangeKind::Api, "nope"),
            (7, ChangeKind::Function, "f"),
        ]
    );
    assert_eq!((all.generation, all.complete), (g0 + 7, true));
    // Paged: the generation answered is that of the last change returned.
    let page = s.changes_since(g0, 2).await.unwrap();
    assert_eq!(page.generation, g0 + 2);
    assert_eq!(
        page.changes.last(),
        Some(&Change {
            generation: g0 + 2,
            kind: ChangeKind::Config,
            name: "f".into()
        })
    );
    // A reader ahead of the store (a store made anew) must reload.
    assert!(!s.changes_since(g0 + 100, 10).await.unwrap().complete);
}

/// Versions stay readable after newer ones; aliases name them, and every move is kept.
async fn versions_and_aliases_conformance(s: &dyn MetadataStore) {
    for sha in ["v1", "v2", "v3"] {
        s.put_version(version("va", sha)).await.unwrap();
    }
    assert_eq!(
        s.get_version("va", 2).await.unwrap().unwrap().code_sha256,
        "v2"
    );
    assert!(s.get_version("va", 9).await.unwrap().is_none());
    let all: Vec<u64> = s
        .list_versions("va")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(all, [1, 2, 3]);
    let g0 = s.changes_since(0, 100_000).await.unwrap().generation;
    let prod = |routing: Vec<(u64, u32)>, at: i64| AliasRecord {
        function: "va".into(),
        name: "prod".into(),
        routing,
        sticky: None,
        shadow: None,
        description: String::new(),
        updated_at_ms: at,
        updated_by: "admin".into(),
    };
    s.put_alias(&prod(vec![(1, 100)], 10)).await.unwrap();
    s.put_alias(&prod(vec![(2, 90), (3, 10)], 20))
        .await
        .unwrap();
    assert_eq!(
        s.list_aliases("va").await.unwrap(),
        [prod(vec![(2, 90), (3, 10)], 20)]
    );
    assert!(s.delete_alias("va", "prod", "k1").await.unwrap());
    assert!(!s.delete_alias("va", "prod", "k1").await.unwrap());
    let history: Vec<(Vec<(u64, u32)>, String)> = s
        .alias_history("va")
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.routing, a.updated_by))
        .collect();
    assert_eq!(
        history,
        [
            (vec![(1, 100)], "admin".to_string()),
            (vec![(2, 90), (3, 10)], "admin".to_string()),
            (vec![], "k1".to_string()),
        ]
    );
    let kinds: Vec<ChangeKind> = s
        .changes_since(g0, 100)
        .await
        .unwrap()
        .changes
        .iter()
        .map(|c| c.kind)
        .collect();
    assert_eq!(kinds, [ChangeKind::Alias; 4]);
    // A version goes only when it is not the latest and no alias routes to it; an alias
    // cannot name a version that is gone.
    s.put_alias(&prod(vec![(2, 100)], 25)).await.unwrap();
    assert_eq!(
        s.delete_version("va", 3).await.unwrap(),
        VersionDeleted::Latest
    );
    assert_eq!(
        s.delete_version("va", 2).await.unwrap(),
        VersionDeleted::UsedBy(vec!["prod".into()])
    );
    assert_eq!(
        s.delete_version("va", 1).await.unwrap(),
        VersionDeleted::Deleted
    );
    assert_eq!(
        s.delete_version("va", 1).await.unwrap(),
        VersionDeleted::Missing
    );
    let e = s.put_alias(&prod(vec![(1, 100)], 26)).await.unwrap_err();
    assert!(matches!(e, RegistryError::Conflict(_)), "{e}");
    let left: Vec<u64> = s
        .list_versions("va")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(left, [2, 3]);
    // A function's aliases and history go with it.
    s.put_alias(&prod(vec![(2, 100)], 30)).await.unwrap();
    s.delete("va").await.unwrap();
    assert!(s.list_aliases("va").await.unwrap().is_empty());
    assert!(s.alias_history("va").await.unwrap().is_empty());
}

/// A shadow challenger is recorded with its alias and protects its version.
async fn shadow_conformance(s: &dyn MetadataStore) {
    for sha in ["1", "2", "3"] {
        s.put_version(version("sh", sha)).await.unwrap();
    }
    let alias = AliasRecord {
        function: "sh".into(),
        name: "prod".into(),
        routing: vec![(1, 100)],
        sticky: None,
        shadow: Some(ShadowTarget {
            version: 2,
            percent: 25,
        }),
        description: String::new(),
        updated_at_ms: 1,
        updated_by: "admin".into(),
    };
    s.put_alias(&alias).await.unwrap();
    assert_eq!(
        s.list_aliases("sh").await.unwrap(),
        std::slice::from_ref(&alias)
    );
    assert_eq!(s.alias_history("sh").await.unwrap()[0].shadow, alias.shadow);
    assert_eq!(
        s.delete_version("sh", 2).await.unwrap(),
        VersionDeleted::UsedBy(vec!["prod".into()])
    );
    let mut gone = alias.clone();
    gone.shadow = Some(ShadowTarget {
        version: 9,
        percent: 25,
    });
    let e = s.put_alias(&gone).await.unwrap_err();
    assert!(matches!(e, RegistryError::Conflict(_)), "{e}");
}

/// Provisioned concurrency names a version or an alias that exists, is a change of kind
/// `Config`, and goes with its alias, its version or its function.
async fn provisioned_conformance(s: &dyn MetadataStore) {
    for sha in ["1", "2"] {
        s.put_version(version("pc", sha)).await.unwrap();
    }
    let alias = AliasRecord {
        function: "pc".into(),
        name: "live".into(),
        routing: vec![(2, 100)],
        sticky: None,
        shadow: None,
        description: String::new(),
        updated_at_ms: 1,
        updated_by: "admin".into(),
    };
    s.put_alias(&alias).await.unwrap();
    let rec = |q: &str, count| ProvisionedRecord {
        function: "pc".into(),
        qualifier: q.into(),
        count,
        updated_at_ms: 5,
        updated_by: "k1".into(),
    };
    let g0 = s.generation().await.unwrap();
    s.put_provisioned(&rec("1", 2)).await.unwrap();
    s.put_provisioned(&rec("live", 3)).await.unwrap();
    s.put_provisioned(&rec("live", 4)).await.unwrap();
    let changes = s.changes_since(g0, 10).await.unwrap().changes;
    assert_eq!(changes.len(), 3);
    assert!(changes
        .iter()
        .all(|c| c.kind == ChangeKind::Config && c.name == "pc"));
    assert_eq!(
        s.list_provisioned("pc").await.unwrap(),
        [rec("1", 2), rec("live", 4)]
    );
    for missing in ["7", "beta"] {
        let e = s.put_provisioned(&rec(missing, 1)).await.unwrap_err();
        assert!(matches!(e, RegistryError::Conflict(_)), "{e}");
    }
    assert!(s.delete_alias("pc", "live", "admin").await.unwrap());
    assert_eq!(s.list_provisioned("pc").await.unwrap(), [rec("1", 2)]);
    s.put_version(version("pc", "3")).await.unwrap();
    assert_eq!(
        s.delete_version("pc", 1).await.unwrap(),
        VersionDeleted::Deleted
    );
    assert!(s.list_provisioned("pc").await.unwrap().is_empty());
    s.put_provisioned(&rec("2", 1)).await.unwrap();
    assert!(s.delete_provisioned("pc", "2").await.unwrap());
    assert!(!s.delete_provisioned("pc", "2").await.unwrap());
    s.put_provisioned(&rec("2", 1)).await.unwrap();
    assert!(s.delete("pc").await.unwrap());
    assert!(s.list_provisioned("pc").await.unwrap().is_empty());
}

/// Model revisions count from 1 per model; a head names only a recorded revision, and
/// moving it is a change of kind `Model`.
async fn model_store_conformance(s: &dyn MetadataStore) {
    let r1 = s
        .add_model_revision("digits", "aa", 10, "first", "admin")
        .await
        .unwrap();
    let r2 = s
        .add_model_revision("digits", "bb", 20, "", "k1")
        .await
        .unwrap();
    let other = s
        .add_model_revision("iris", "cc", 5, "", "admin")
        .await
        .unwrap();
    assert_eq!((r1.revision, r2.revision, other.revision), (1, 2, 1));
    // Recorded is not current.
    assert!(s.get_model("digits", None).await.unwrap().is_none());
    let g0 = s.generation().await.unwrap();
    s.set_model_head("digits", 2, "admin").await.unwrap();
    assert_eq!(s.get_model("digits", None).await.unwrap(), Some(r2.clone()));
    assert_eq!(
        s.get_model("digits", Some(1)).await.unwrap(),
        Some(r1.clone())
    );
    s.set_model_head("digits", 1, "k1").await.unwrap();
    assert_eq!(s.get_model("digits", None).await.unwrap(), Some(r1.clone()));
    let e = s.set_model_head("digits", 7, "admin").await.unwrap_err();
    assert!(matches!(e, RegistryError::Conflict(_)), "{e}");
    assert_eq!(s.get_model("digits", None).await.unwrap(), Some(r1.clone()));
    assert_eq!(s.list_model_revisions("digits").await.unwrap(), [r1, r2]);
    let heads: Vec<(String, u64, String)> = s
        .list_model_heads()
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.name, h.revision, h.updated_by))
        .collect();
    assert_eq!(heads, [("digits".to_string(), 1, "k1".to_string())]);
    let changes = s.changes_since(g0, 100).await.unwrap().changes;
    let kinds: Vec<(ChangeKind, &str)> =
        changes.iter().map(|c| (c.kind, c.name.as_str())).collect();
    assert_eq!(kinds, [(ChangeKind::Model, "digits"); 2]);
}

/// Concurrent deploys of one function get distinct versions from the store's counter.
async fn concurrent_versions_are_distinct(s: Arc<dyn MetadataStore>) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.put_version(version("race", &i.to_string())).await })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=16).collect::<Vec<u64>>());
    assert_eq!(s.get("race").await.unwrap().unwrap().version, 16);
}

/// What every blob store must do.
async fn blob_conformance(s: &dyn BlobStore) {
    let data = Bytes::from_static(b"some package bytes");
    let d = digest_of(&data);
    assert!(s.get(&d).await.unwrap().is_none());
    s.put(&d, data.clone()).await.unwrap();
    s.put(&d, data.clone()).await.unwrap();
    assert_eq!(s.get(&d).await.unwrap().unwrap(), data);
    // Digests become names: anything else is refused, not stored.
    for bad in ["../../etc/passwd", "", &"g".repeat(64)] {
        assert!(s.put(bad, data.clone()).await.is_err(), "{bad:?}");
        assert!(s.get(bad).await.is_err(), "{bad:?}");
    }
}

/// The code cache over a blob store: unpack once by digest, again after a loss.
async fn code_cache_conformance(blobs: Arc<dyn BlobStore>, work: &std::path::Path) {
    let cache = CodeCache::new(work.join("code"), blobs.clone(), PackageLimits::default()).unwrap();
    let src = work.join("fn");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("modelfn.toml"), "name = \"f\"").unwrap();
    std::fs::write(src.join("sub/data.bin"), [7u8; 100]).unwrap();
    let archive = Bytes::from(pack_dir(&src).unwrap());
    let limits = PackageLimits::default();
    // Stored by content: the same package twice is one digest and one directory.
    let a = cache.add(archive.clone(), limits).await.unwrap();
    let b = cache.add(archive.clone(), limits).await.unwrap();
    assert_eq!((a.digest.len(), &a.digest, &a.dir), (64, &b.digest, &b.dir));
    assert_eq!((a.unpacked.files, a.unpacked.unpacked_bytes), (2, 110));
    assert_eq!(blobs.get(&a.digest).await.unwrap().unwrap(), archive);
    assert_eq!(
        std::fs::read(a.dir.join("sub/data.bin")).unwrap(),
        [7u8; 100]
    );
    // The unpacked directory comes back after it is lost (another node's cache, or a
    // restart that lost it), from the blob store.
    std::fs::remove_dir_all(&a.dir).unwrap();
    let again = cache.code_dir(&a.digest).await.unwrap();
    assert_eq!(
        std::fs::read(again.join("modelfn.toml")).unwrap(),
        b"name = \"f\""
    );
    let other = CodeCache::new(work.join("code2"), blobs, limits).unwrap();
    assert!(other
        .code_dir(&a.digest)
        .await
        .unwrap()
        .join("sub/data.bin")
        .is_file());
    // Unknown digests and bad packages are errors, not panics; a bad one is not stored.
    assert!(cache.code_dir(&"0".repeat(64)).await.is_err());
    assert!(cache.code_dir("../x").await.is_err());
    let e = cache
        .add(Bytes::from_static(b"not a package"), limits)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::InvalidPackage(_)), "{e}");
}

/// Quotas count requests per plan, key and period, a batch at a time, granting what is
/// left and never past the quota.
async fn quota_conformance(s: &dyn MetadataStore) {
    let day = "2026-11-28";
    assert_eq!(s.take_quota("gold", "K1", day, 1, 5).await.unwrap(), 1);
    assert_eq!(s.take_quota("gold", "K1", day, 3, 5).await.unwrap(), 3);
    assert_eq!(
        s.take_quota("gold", "K1", day, 3, 5).await.unwrap(),
        1,
        "what is left"
    );
    assert_eq!(
        s.take_quota("gold", "K1", day, 1, 5).await.unwrap(),
        0,
        "used up"
    );
    assert_eq!(
        s.take_quota("gold", "K1", day, 2, 6).await.unwrap(),
        1,
        "a raised quota"
    );
    assert_eq!(
        s.take_quota("gold", "K2", day, 9, 5).await.unwrap(),
        5,
        "a first batch over"
    );
    assert_eq!(
        s.take_quota("gold", "K1", "2026-11-29", 1, 5)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.take_quota("silver", "K1", day, 1, 5).await.unwrap(), 1);
    assert_eq!(s.take_quota("gold", "K3", day, 1, 0).await.unwrap(), 0);
    assert_eq!(s.take_quota("gold", "K3", day, 0, 5).await.unwrap(), 0);
}

/// Nodes record themselves; the list is by name; old ones are forgotten.
async fn node_conformance(s: &dyn MetadataStore) {
    let mut n = modelfn_registry::NodeRecord {
        name: "b-node".into(),
        address: "10.0.0.2:8080".into(),
        version: "0.1.0".into(),
        started_ms: 1,
        last_seen_ms: 100,
        generation: 7,
        in_flight: 3,
    };
    s.heartbeat(&n).await.unwrap();
    let a = modelfn_registry::NodeRecord {
        name: "a-node".into(),
        last_seen_ms: 50,
        ..n.clone()
    };
    s.heartbeat(&a).await.unwrap();
    n.last_seen_ms = 200;
    n.generation = 9;
    s.heartbeat(&n).await.unwrap();
    assert_eq!(s.list_nodes().await.unwrap(), vec![a, n.clone()]);
    assert_eq!(s.forget_nodes(60).await.unwrap(), 1);
    assert_eq!(s.list_nodes().await.unwrap(), vec![n]);
}

/// Every metadata suite, on one store.
async fn metadata_conforms(store: SqlMetadataStore) {
    node_conformance(&store).await;
    quota_conformance(&store).await;
    metadata_conformance(&store).await;
    change_log_conformance(&store).await;
    versions_and_aliases_conformance(&store).await;
    shadow_conformance(&store).await;
    provisioned_conformance(&store).await;
    model_store_conformance(&store).await;
    concurrent_versions_are_distinct(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlMetadataStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(
        store.watch_changes().is_none(),
        "SQLite has no notifications"
    );
    assert!(!store.shared());
    metadata_conforms(store).await;
}

#[path = "support/postgres.rs"]
mod postgres;

#[tokio::test]
async fn postgresql_conforms() {
    let pg = postgres::start();
    let url = pg.database("conformance");
    let store = SqlMetadataStore::connect(&url, 8).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    metadata_conforms(store).await;
}

/// What makes PostgreSQL the cluster's store: two stores (two nodes) on one database
/// share versions, counters and the change log, and migrating twice is harmless.
#[tokio::test]
async fn two_nodes_share_one_postgresql() {
    let pg = postgres::start();
    let url = pg.database("shared");
    let (a, b) = tokio::join!(
        SqlMetadataStore::connect(&url, 4),
        SqlMetadataStore::connect(&url, 4)
    );
    let (a, b) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    let g0 = b.generation().await.unwrap();
    assert_eq!(
        a.put_version(version("iris", "a")).await.unwrap().version,
        1
    );
    assert_eq!(
        b.put_version(version("iris", "b")).await.unwrap().version,
        2
    );
    assert_eq!(b.get("iris").await.unwrap().unwrap().code_sha256, "b");
    let seen = b.changes_since(g0, 100).await.unwrap();
    assert!(seen.complete);
    assert_eq!(seen.changes.len(), 2, "{seen:?}");
    // Deploys racing on both nodes get distinct numbers.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.put_version(version("race", &i.to_string()))
                .await
                .unwrap()
                .version
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort();
    assert_eq!(got, (1..=20).collect::<Vec<u64>>());
    // A quota counted by both nodes at once is exact.
    assert!(a.shared() && b.shared());
    let mut tasks = Vec::new();
    for i in 0..60 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.take_quota("gold", "K", "2026-11-28", 1 + i % 3, 50)
                .await
                .unwrap()
        }));
    }
    let mut counted = 0;
    for t in tasks {
        counted += t.await.unwrap();
    }
    assert_eq!(counted, 50);
    // A change committed on one node wakes the other's watch (LISTEN/NOTIFY).
    let watch = b.watch_changes().expect("PostgreSQL can be watched");
    let wake = watch.wake();
    let wait = std::time::Duration::from_secs(10);
    tokio::time::timeout(wait, wake.notified()).await.unwrap(); // listening
    let plan = DocRecord {
        name: "gold".into(),
        definition: "{}".into(),
    };
    a.put_plan(&plan).await.unwrap();
    tokio::time::timeout(wait, wake.notified())
        .await
        .expect("no notification of a change made on the other node");
    // The password never reaches a message.
    let e = SqlMetadataStore::connect(
        &format!("postgres://modelfn:hunter2@127.0.0.1:{}/nosuchdb", pg.port),
        1,
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("nosuchdb") && !e.contains("hunter2"), "{e}");
    let e = SqlMetadataStore::connect("mysql://x/y", 1)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("mysql"), "{e}");
}

#[tokio::test]
async fn the_local_directory_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalBlobStore::new(dir.path().join("blobs")).unwrap());
    blob_conformance(store.as_ref()).await;
    code_cache_conformance(store, dir.path()).await;
}

#[path = "support/moto.rs"]
mod moto;

#[tokio::test]
async fn an_s3_bucket_conforms() {
    let moto = moto::start();
    moto::make_bucket(&moto, "modelfn-blobs");
    let open_limited = |url: &str, max_bytes: u64| {
        modelfn_registry::S3BlobStore::with_endpoint(
            url,
            &moto.endpoint,
            "us-east-1",
            "test-key",
            "test-secret",
            max_bytes,
        )
    };
    let open = |url: &str| open_limited(url, 1 << 20);
    let store = Arc::new(open("s3://modelfn-blobs/cluster-a/").unwrap());
    blob_conformance(store.as_ref()).await;
    let dir = tempfile::tempdir().unwrap();
    code_cache_conformance(store.clone(), dir.path()).await;
    // Every object sits under the prefix, named by its digest; nothing else was written.
    let (keys, listing) = moto::keys(&moto, "modelfn-blobs");
    assert_eq!(keys.len(), 2, "{listing}");
    for key in &keys {
        let digest = key.strip_prefix("cluster-a/blobs/sha256/").unwrap();
        assert_eq!(digest.len(), 64, "{key}");
    }
    // Another prefix in the same bucket sees none of them.
    let other = open("s3://modelfn-blobs/cluster-b").unwrap();
    let d = digest_of(b"some package bytes");
    assert!(other.get(&d).await.unwrap().is_none());
    assert!(store.get(&d).await.unwrap().is_some());
    // An object over the limit is refused before it is read.
    let small = open_limited("s3://modelfn-blobs/cluster-a", 10).unwrap();
    let e = small.get(&d).await.unwrap_err().to_string();
    assert!(e.contains("over the limit of 10"), "{e}");
    // A bucket that does not exist is an error that names it, not "no such blob".
    let missing = open("s3://no-such-bucket").unwrap();
    let e = missing.get(&d).await.unwrap_err().to_string();
    assert!(e.contains("s3://no-such-bucket"), "{e}");
    // Bad URLs are refused before any request.
    assert!(open("s3://UPPER").is_err());
    assert!(open("file:///tmp").is_err());
}
