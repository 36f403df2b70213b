//! The node-local code cache: each package unpacked once into a directory named by its
//! digest, fetched from the [`BlobStore`] when this node has not unpacked it yet (after
//! a restart that lost it, or a deploy made on another node). Model-store files are kept
//! the same way, one read-only file per digest.

use crate::blobs::{check_digest, digest_of, unique_tmp, BlobStore};
use crate::package::{unpack, PackageLimits, UnpackedPackage};
use crate::RegistryError;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A package just added: its digest, code directory and what unpacking found.
#[derive(Debug, Clone)]
pub struct AddedPackage {
    pub digest: String,
    pub dir: PathBuf,
    pub unpacked: UnpackedPackage,
}

/// Unpacked packages on this node, over the shared blob store.
pub struct CodeCache {
    dir: PathBuf,
    blobs: Arc<dyn BlobStore>,
    /// The widest limits (a package accepted once is unpacked again within them).
    limits: PackageLimits,
}

impl CodeCache {
    /// `dir` holds the unpacked directories; it must be reachable by the unprivileged
    /// users functions run as (mode 0755).
    pub fn new(
        dir: impl Into<PathBuf>,
        blobs: Arc<dyn BlobStore>,
        limits: PackageLimits,
    ) -> Result<Self, RegistryError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        for d in [dir.parent().unwrap_or(&dir), &dir] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(CodeCache { dir, blobs, limits })
    }

    /// Stores a single file (a model-store revision) as a blob; answers its digest.
    pub async fn add_file(&self, data: Bytes) -> Result<String, RegistryError> {
        let digest = digest_of(&data);
        self.blobs.put(&digest, data).await?;
        Ok(digest)
    }

    /// The local path of a file stored with [`CodeCache::add_file`], fetched from the
    /// blob store if this node has not got it yet. The file never changes (it is named by
    /// its digest) and is readable by function users (0644).
    pub async fn file(&self, digest: &str) -> Result<PathBuf, RegistryError> {
        check_digest(digest)?;
        let dir = self.dir.join("files");
        let dest = dir.join(digest);
        if dest.is_file() {
            return Ok(dest);
        }
        let data = self.blobs.get(digest).await?.ok_or_else(|| {
            RegistryError::Storage(format!("file {digest} is missing from the blob store"))
        })?;
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
            let tmp = unique_tmp(&dir, "file");
            std::fs::write(&tmp, &data)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
            std::fs::rename(&tmp, &dest)?;
            Ok(dest)
        })
        .await
        .map_err(|e| RegistryError::Storage(format!("writing task failed: {e}")))?
    }

    /// Checks and unpacks a package within `limits`, then stores it as a blob: a package
    /// that does not unpack is refused before anything is stored.
    pub async fn add(
        &self,
        archive: Bytes,
        limits: PackageLimits,
    ) -> Result<AddedPackage, RegistryError> {
        let dir = self.dir.clone();
        let data = archive.clone();
        let added = tokio::task::spawn_blocking(move || {
            let digest = digest_of(&data);
            let dest = dir.join(&digest);
            let unpacked = if dest.is_dir() {
                // Already here: still check it against this caller's limits.
                let check = unique_tmp(&dir, "check");
                std::fs::create_dir_all(&check)?;
                let r = unpack(&data, &check, &limits);
                let _ = std::fs::remove_dir_all(&check);
                r?
            } else {
                unpack_atomically(&data, &dest, &limits)?
            };
            Ok::<_, RegistryError>(AddedPackage {
                digest,
                dir: dest,
                unpacked,
            })
        })
        .await
        .map_err(|e| RegistryError::Storage(format!("unpacking task failed: {e}")))??;
        self.blobs.put(&added.digest, archive).await?;
        Ok(added)
    }

    /// The unpacked directory of a stored package, unpacking it from the blob store if
    /// this node does not have it.
    pub async fn code_dir(&self, digest: &str) -> Result<PathBuf, RegistryError> {
        check_digest(digest)?;
        let dest = self.dir.join(digest);
        if dest.is_dir() {
            return Ok(dest);
        }
        let archive = self.blobs.get(digest).await?.ok_or_else(|| {
            RegistryError::Storage(format!("package {digest} is missing from the blob store"))
        })?;
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            // Restoring what was accepted once: only the widest limits apply.
            unpack_atomically(&archive, &dest, &limits)?;
            Ok(dest)
        })
        .await
        .map_err(|e| RegistryError::Storage(format!("unpacking task failed: {e}")))?
    }
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
    match unpack(archive, &tmp, limits) {
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
