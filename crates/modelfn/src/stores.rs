//! Where a node keeps its state: the embedded defaults in the data directory (SQLite
//! files, a blob directory, the buckets' directory), or a cluster's shared services
//! (PostgreSQL for metadata and the asynchronous queue, an S3 bucket for blobs and the
//! buckets' objects); and what names the node and admits
//! its administrator (the node's name, the admin token).

use crate::config::ServeConfig;
use anyhow::{Context, Result};
use modelfn_gateway::objects::store::BucketStore;
use modelfn_queue::SqlQueue;
use modelfn_registry::{BlobStore, LocalBlobStore, S3BlobStore, SqlMetadataStore};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The admin token's file in the data directory.
pub const TOKEN_FILE: &str = "admin-token";
/// The node's name, made on first start and kept, in the data directory.
const NODE_FILE: &str = "node-name";
/// Connections a node holds to a PostgreSQL database, for metadata and for the queue
/// (with the one that listens for changes: 15 at most; docs/cluster.md).
const METADATA_CONNECTIONS: u32 = 8;
const QUEUE_CONNECTIONS: u32 = 6;

/// The metadata store: the cluster's PostgreSQL (`database`), else SQLite in the data
/// directory.
pub async fn metadata(cfg: &ServeConfig, data: &Path) -> Result<SqlMetadataStore> {
    if let Some(url) = &cfg.database {
        return SqlMetadataStore::connect(url, METADATA_CONNECTIONS)
            .await
            .context("connecting to the metadata database");
    }
    let db = data.join("modelfn.db");
    let meta = SqlMetadataStore::open(&db)
        .await
        .context("opening the metadata database")?;
    set_mode(&db, 0o600)?;
    Ok(meta)
}

/// The asynchronous queue (and the leases of stream mappings): in the cluster's
/// PostgreSQL, else its own SQLite file.
pub async fn queue(cfg: &ServeConfig, data: &Path, node: &str) -> Result<Arc<SqlQueue>> {
    let queue = match &cfg.database {
        Some(url) => SqlQueue::connect(url, QUEUE_CONNECTIONS, node)
            .await
            .context("connecting to the asynchronous queue's database")?,
        None => {
            let path = data.join("queue.db");
            SqlQueue::open(&path)
                .await
                .with_context(|| format!("opening the asynchronous queue {}", path.display()))?
        }
    };
    Ok(Arc::new(queue))
}

/// The blob store: the cluster's bucket (`artifacts`), else a directory.
pub fn blobs(cfg: &ServeConfig, data: &Path, max_bytes: u64) -> Result<Arc<dyn BlobStore>> {
    Ok(match &cfg.artifacts {
        Some(url) => {
            Arc::new(S3BlobStore::from_env(url, max_bytes).context("opening the blob store")?)
        }
        None => Arc::new(
            LocalBlobStore::new(data.join("artifacts/blobs/sha256"))
                .context("opening the blob store")?,
        ),
    })
}

/// Where other nodes and operators reach this node: the listen address, or the host's
/// name when it listens on every interface (`0.0.0.0:8080` in a pod).
pub fn node_address(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("{}:{}", hostname(), addr.port())
    } else {
        addr.to_string()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The buckets of `/v1/buckets`: under `prefix/buckets/` of the cluster's bucket
/// (`artifacts`), else in the data directory.
pub fn buckets(cfg: &ServeConfig, data: &Path) -> Result<BucketStore> {
    if let Some(url) = &cfg.artifacts {
        let (store, prefix) =
            modelfn_registry::s3::bucket_from_env(url).context("opening the buckets' S3 bucket")?;
        return Ok(BucketStore::s3(store, prefix, cfg.max_object_bytes));
    }
    let dir = data.join("buckets");
    BucketStore::new(dir.clone(), cfg.max_object_bytes)
        .with_context(|| format!("opening the buckets in {}", dir.display()))
}

/// This node's name: `<host>-<random>`, made on first start and kept in the data
/// directory, so a restarted node takes back its own work (its queue leases).
pub fn node_name(data: &Path) -> Result<String> {
    let path = data.join(NODE_FILE);
    if let Ok(name) = std::fs::read_to_string(&path) {
        let name = name.trim();
        if !name.is_empty() {
            return Ok(name.to_string());
        }
    }
    let host = hostname();
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the node name: {e}"))?;
    let name = if host.is_empty() {
        hex::encode(bytes)
    } else {
        format!("{host}-{}", hex::encode(bytes))
    };
    write_private(&path, &name)?;
    Ok(name)
}

/// The admin token: the one given (the same on every node of a cluster), kept in the data
/// directory too for the CLI on this machine; else the one kept there, made (mode 0600)
/// on first start.
pub fn admin_token(data_dir: &Path, given: Option<&str>) -> Result<String> {
    let path = data_dir.join(TOKEN_FILE);
    if let Some(t) = given {
        write_private(&path, t)?;
        return Ok(t.to_string());
    }
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the admin token: {e}"))?;
    let token = hex::encode(bytes);
    write_private(&path, &token)?;
    Ok(token)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}
