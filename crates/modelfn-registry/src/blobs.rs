//! Blobs: uploaded packages and layers, stored whole by their SHA-256 behind the
//! [`BlobStore`] trait (a local directory here; S3 in a cluster). Blobs are immutable:
//! writes go to a temporary name first and are renamed into place, so a crash never
//! leaves a half-written one.

use crate::RegistryError;
use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The hex SHA-256 of `data`.
pub fn digest_of(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Checks that `digest` is 64 hex digits (it becomes a file or object name).
pub fn check_digest(digest: &str) -> Result<(), RegistryError> {
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(RegistryError::Storage(format!(
            "bad blob digest {digest:?}"
        )))
    }
}

/// Content-addressed storage of whole archives.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `data` under `digest`, which the caller computed with [`digest_of`]; storing
    /// a digest already there is a no-op.
    async fn put(&self, digest: &str, data: Bytes) -> Result<(), RegistryError>;
    /// The blob, or `None` when nothing is stored under `digest`.
    async fn get(&self, digest: &str) -> Result<Option<Bytes>, RegistryError>;
}

/// The default blob store: a local directory (`<data dir>/artifacts/blobs/sha256`).
pub struct LocalBlobStore {
    dir: PathBuf,
}

impl LocalBlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(LocalBlobStore { dir })
    }
}

/// A name beside the destination that no other writer uses.
pub(crate) fn unique_tmp(dir: &std::path::Path, stem: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".tmp-{stem}-{}-{n}", std::process::id()))
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, digest: &str, data: Bytes) -> Result<(), RegistryError> {
        check_digest(digest)?;
        let dest = self.dir.join(digest);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            if dest.is_file() {
                return Ok(());
            }
            let tmp = unique_tmp(&dir, "blob");
            std::fs::write(&tmp, &data)?;
            std::fs::rename(&tmp, &dest)?;
            Ok(())
        })
        .await
        .map_err(|e| RegistryError::Storage(format!("blob write failed: {e}")))?
    }

    async fn get(&self, digest: &str) -> Result<Option<Bytes>, RegistryError> {
        check_digest(digest)?;
        match tokio::fs::read(self.dir.join(digest)).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
