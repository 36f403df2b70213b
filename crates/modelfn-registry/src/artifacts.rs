//! Artifacts: uploaded packages stored by their SHA-256, and unpacked once into a code
//! directory of the same name. Both are immutable once written; writes go to a temporary
//! name first and are renamed into place, so a crash never leaves a half-written artifact.

use crate::package::{unpack, PackageLimits, UnpackedPackage};
use crate::RegistryError;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Stores packages by content and hands out their unpacked directories.
#[async_trait]
pub trait ArtifactStore: Send + Sync + 'static {
    /// Stores a package, unpacks it within `limits`, and answers its digest (hex SHA-256)
    /// and code directory.
    async fn put_package(
        &self,
        archive: Vec<u8>,
        limits: PackageLimits,
    ) -> Result<(String, PathBuf, UnpackedPackage), RegistryError>;
    /// The unpacked directory of a stored package (unpacking it again if it is missing).
    async fn code_dir(&self, digest: &str) -> Result<PathBuf, RegistryError>;
}

/// The default store: a local directory (`<data dir>/artifacts`).
pub struct LocalArtifactStore {
    root: PathBuf,
    limits: PackageLimits,
}

impl LocalArtifactStore {
    pub fn new(root: impl Into<PathBuf>, limits: PackageLimits) -> Result<Self, RegistryError> {
        let root = root.into();
        std::fs::create_dir_all(root.join("blobs/sha256"))?;
        std::fs::create_dir_all(root.join("code"))?;
        // Code must be reachable by the unprivileged user functions run as.
        for dir in [root.clone(), root.join("code")] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(LocalArtifactStore { root, limits })
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(digest)
    }

    fn code_path(&self, digest: &str) -> PathBuf {
        self.root.join("code").join(digest)
    }
}

fn unique_tmp(dir: &Path, stem: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".tmp-{stem}-{}-{n}", std::process::id()))
}

/// Unpacks into a temporary directory beside `dest`, then renames it into place.
fn unpack_atomically(
    archive: &[u8],
    dest: &Path,
    limits: &PackageLimits,
) -> Result<UnpackedPackage, RegistryError> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = unique_tmp(parent, "code");
    std::fs::create_dir_all(&tmp)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    let result = unpack(archive, &tmp, limits);
    match result {
        Ok(info) => {
            if std::fs::rename(&tmp, dest).is_err() {
                // Someone unpacked the same content first: theirs is identical.
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Ok(info)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifactStore {
    async fn put_package(
        &self,
        archive: Vec<u8>,
        limits: PackageLimits,
    ) -> Result<(String, PathBuf, UnpackedPackage), RegistryError> {
        let blob_dir = self.root.join("blobs/sha256");
        let code = self.root.join("code");

        tokio::task::spawn_blocking(move || {
            let digest = hex::encode(Sha256::digest(&archive));
            let dest = code.join(&digest);
            // Unpack first: an invalid package is refused before anything is stored.
            let info = if dest.is_dir() {
                let check = unique_tmp(&code, "check");
                std::fs::create_dir_all(&check)?;
                let r = unpack(&archive, &check, &limits);
                let _ = std::fs::remove_dir_all(&check);
                r?
            } else {
                unpack_atomically(&archive, &dest, &limits)?
            };
            let blob = blob_dir.join(&digest);
            if !blob.is_file() {
                let tmp = unique_tmp(&blob_dir, "blob");
                std::fs::write(&tmp, &archive)?;
                std::fs::rename(&tmp, &blob)?;
            }
            Ok((digest, dest, info))
        })
        .await
        .map_err(|e| RegistryError::Storage(format!("unpacking task failed: {e}")))?
    }

    async fn code_dir(&self, digest: &str) -> Result<PathBuf, RegistryError> {
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RegistryError::Storage(format!(
                "bad artifact digest {digest:?}"
            )));
        }
        let dest = self.code_path(digest);
        if dest.is_dir() {
            return Ok(dest);
        }
        let blob = self.blob_path(digest);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            let archive = std::fs::read(&blob).map_err(|e| {
                RegistryError::Storage(format!("artifact {} is missing: {e}", blob.display()))
            })?;
            // Restoring what was accepted once: only the store's own (widest) limits apply.
            unpack_atomically(&archive, &dest, &limits)?;
            Ok(dest)
        })
        .await
        .map_err(|e| RegistryError::Storage(format!("unpacking task failed: {e}")))?
    }
}
