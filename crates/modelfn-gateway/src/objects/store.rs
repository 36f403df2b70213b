//! Buckets in a local directory: `<data>/buckets/<bucket>/<key>`, an object written to a
//! temporary file as its body streams in (bounded, hashed) and renamed into place, so a
//! reader sees the whole old object or the whole new one; or, in a cluster, in its S3
//! bucket ([`super::s3`]). Names are checked ([`modelfn_core::objects::check_key`]) before
//! they become paths or object names: no `..`, no absolute path, no hidden part.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use modelfn_core::objects::{check_bucket, check_key};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use tokio::io::AsyncWriteExt;

/// An object's body, as it streams from where it is kept.
pub type ObjectBody = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An object as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// A stored object's size and digest.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// SHA-256 of the body, hex (S3's ETag is an MD5; this is stronger and as opaque).
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    BadName(String),
    #[error("the object is larger than the limit of {0} bytes (max_object_mb)")]
    TooLarge(u64),
    #[error("no object {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the body could not be read: {0}")]
    Body(String),
    #[error("the bucket store failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The buckets: this node's directory, or the cluster's S3 bucket.
pub struct BucketStore {
    root: PathBuf,
    s3: Option<super::s3::S3Buckets>,
    max_object_bytes: u64,
}

impl BucketStore {
    /// Buckets in a directory of this node.
    pub fn new(root: PathBuf, max_object_bytes: u64) -> std::io::Result<BucketStore> {
        std::fs::create_dir_all(root.join(".tmp"))?;
        Ok(BucketStore {
            root,
            s3: None,
            max_object_bytes,
        })
    }

    /// Buckets under `prefix/buckets/` of an S3 bucket, shared by every node.
    pub fn s3(
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        prefix: String,
        max_object_bytes: u64,
    ) -> BucketStore {
        BucketStore {
            root: PathBuf::new(),
            s3: Some(super::s3::S3Buckets::new(store, prefix)),
            max_object_bytes,
        }
    }

    pub fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, StoreError> {
        check_bucket(bucket).map_err(StoreError::BadName)?;
        check_key(key).map_err(StoreError::BadName)?;
        Ok(self.root.join(bucket).join(key))
    }

    /// Writes `body` as `bucket`/`key`, at most the object limit.
    pub async fn put<S, E>(&self, bucket: &str, key: &str, body: S) -> Result<Stored, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.path(bucket, key)?;
        if let Some(s3) = &self.s3 {
            let (size, etag) = s3.put(bucket, key, body, self.max_object_bytes).await?;
            return Ok(Stored {
                bucket: bucket.to_string(),
                key: key.to_string(),
                size,
                etag,
            });
        }
        let tmp = self
            .root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().to_string());
        let written = self.write(&tmp, body).await;
        let (size, etag) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let placed = async {
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| in_the_way(e, key))?;
            }
            if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
                return Err(StoreError::Conflict(format!(
                    "{key} is a prefix of other objects; it cannot be an object too"
                )));
            }
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| in_the_way(e, key))
        }
        .await;
        if let Err(e) = placed {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(Stored {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size,
            etag,
        })
    }

    async fn write<S, E>(&self, tmp: &Path, mut body: S) -> Result<(u64, String), StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(tmp).await?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > self.max_object_bytes {
                return Err(StoreError::TooLarge(self.max_object_bytes));
            }
            hash.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok((size, hex::encode(hash.finalize())))
    }

    /// The object's body, streamed, and its size.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectBody, u64), StoreError> {
        let path = self.path(bucket, key)?;
        if let Some(s3) = &self.s3 {
            return s3.get(bucket, key).await;
        }
        let not_found = || StoreError::NotFound(format!("{bucket}/{key}"));
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| not_found())?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(not_found());
        }
        Ok((Box::pin(file_chunks(file)), meta.len()))
    }

    /// Deletes the object; answers whether there was one.
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let path = self.path(bucket, key)?;
        if let Some(s3) = &self.s3 {
            return s3.delete(bucket, key).await;
        }
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => {
                tokio::fs::remove_file(&path).await?;
                Ok(true)
            }
            Ok(_) | Err(_) => Ok(false),
        }
    }

    /// Up to `limit` objects of `bucket` whose keys start with `prefix`, in key order;
    /// and whether there were more.
    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<(Vec<ObjectInfo>, bool), StoreError> {
        check_bucket(bucket).map_err(StoreError::BadName)?;
        if let Some(s3) = &self.s3 {
            return s3.list(bucket, prefix, limit).await;
        }
        let dir = self.root.join(bucket);
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&dir, "", &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            let more = out.len() > limit;
            out.truncate(limit);
            Ok((out, more))
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// The buckets that hold objects or held some.
    pub async fn buckets(&self) -> Result<Vec<String>, StoreError> {
        if let Some(s3) = &self.s3 {
            return s3.buckets().await;
        }
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.root).await?;
        while let Some(e) = dir.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            if check_bucket(&name).is_ok() && e.file_type().await?.is_dir() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A file read in 64 KB chunks.
fn file_chunks(file: tokio::fs::File) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

/// A write that failed because a part of the key is an object already (`a` when
/// writing `a/b`) is a conflict; anything else is the store's failure.
fn in_the_way(e: std::io::Error, key: &str) -> StoreError {
    let kind = e.kind();
    if kind == std::io::ErrorKind::NotADirectory || kind == std::io::ErrorKind::AlreadyExists {
        StoreError::Conflict(format!("a part of {key} is an object already"))
    } else {
        StoreError::Io(e)
    }
}

/// Every file under `dir` whose key (its path from the bucket, `/`-separated) starts
/// with `prefix`.
fn walk(dir: &Path, at: &str, prefix: &str, out: &mut Vec<ObjectInfo>) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let key = format!("{at}{name}");
        let meta = e.metadata()?;
        if meta.is_dir() {
            let below = format!("{key}/");
            // Only directories that can hold keys with the prefix.
            if below.starts_with(prefix) || prefix.starts_with(&below) {
                walk(&e.path(), &below, prefix, out)?;
            }
        } else if key.starts_with(prefix) {
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            out.push(ObjectInfo {
                key,
                size: meta.len(),
                modified_ms,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn objects_are_written_whole_listed_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = BucketStore::new(dir.path().to_path_buf(), 10).unwrap();
        let put = s
            .put("b-1", "in/a.csv", body(&[b"1,2", b"\n"]))
            .await
            .unwrap();
        assert_eq!(put.size, 4);
        s.put("b-1", "in/z.csv", body(&[b"x"])).await.unwrap();
        s.put("b-1", "out.csv", body(&[b"y"])).await.unwrap();
        let (list, more) = s.list("b-1", "in/", 10).await.unwrap();
        let keys: Vec<_> = list.iter().map(|o| o.key.as_str()).collect();
        assert_eq!((keys, more), (vec!["in/a.csv", "in/z.csv"], false));
        assert!(matches!(
            s.put("b-1", "big", body(&[b"0123456789", b"x"])).await,
            Err(StoreError::TooLarge(10))
        ));
        assert!(
            s.get("b-1", "big").await.is_err(),
            "nothing left of a refused body"
        );
        assert!(matches!(
            s.put("b-1", "in", body(&[b"x"])).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.put("b-1", "../escape", body(&[b"x"])).await,
            Err(StoreError::BadName(_))
        ));
        assert!(s.delete("b-1", "out.csv").await.unwrap());
        assert!(!s.delete("b-1", "out.csv").await.unwrap());
        assert_eq!(s.buckets().await.unwrap(), ["b-1"]);
        let tmp = std::fs::read_dir(dir.path().join(".tmp")).unwrap().count();
        assert_eq!(tmp, 0, "no temporary file left behind");
    }
}
