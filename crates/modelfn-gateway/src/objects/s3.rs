//! Buckets in the cluster's S3 bucket (when `--artifacts s3://bucket/prefix` is set):
//! object `KEY` of bucket `B` is `prefix/buckets/B/KEY` there, so every node reads and
//! lists the same objects. A write streams in as a multipart upload (bounded, hashed),
//! completed only when the whole body arrived, so a reader sees the whole old object or
//! the whole new one, as on disk.

use super::store::{ObjectBody, ObjectInfo, StoreError};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The buckets under `prefix/buckets/` of one S3 bucket.
pub struct S3Buckets {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn failed(what: &str, e: object_store::Error) -> StoreError {
    StoreError::Io(std::io::Error::other(format!(
        "{what} on the S3 bucket failed: {e}"
    )))
}

impl S3Buckets {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: String) -> S3Buckets {
        S3Buckets { store, prefix }
    }

    /// `prefix/buckets[/bucket[/key parts]]`, each part encoded by `object_store`.
    fn path(&self, bucket: Option<&str>, key: &str) -> Path {
        let parts = self
            .prefix
            .split('/')
            .filter(|p| !p.is_empty())
            .chain(["buckets"])
            .chain(bucket)
            .chain(key.split('/').filter(|p| !p.is_empty()))
            .map(|p| PathPart::from(p.to_string()));
        Path::from_iter(parts)
    }

    pub async fn put<S, E>(
        &self,
        bucket: &str,
        key: &str,
        mut body: S,
        max_bytes: u64,
    ) -> Result<(u64, String), StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self
            .store
            .put_multipart(&self.path(Some(bucket), key))
            .await
            .map_err(|e| failed("starting an upload", e))?;
        let mut writer = WriteMultipart::new(upload);
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let streamed: Result<(), StoreError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(StoreError::TooLarge(max_bytes));
                }
                hash.update(&chunk);
                writer
                    .wait_for_capacity(4)
                    .await
                    .map_err(|e| failed("uploading", e))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match streamed {
            Ok(()) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| failed("completing an upload", e))?;
                Ok((size, hex::encode(hash.finalize())))
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<(ObjectBody, u64), StoreError> {
        match self.store.get(&self.path(Some(bucket), key)).await {
            Ok(found) => {
                let size = found.meta.size;
                let body = found.into_stream().map_err(std::io::Error::other);
                Ok((Box::pin(body), size))
            }
            Err(object_store::Error::NotFound { .. }) => {
                Err(StoreError::NotFound(format!("{bucket}/{key}")))
            }
            Err(e) => Err(failed("GET", e)),
        }
    }

    pub async fn delete(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let path = self.path(Some(bucket), key);
        // S3 answers a delete of nothing as a success: a HEAD says whether there was one.
        match self.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(failed("HEAD", e)),
        }
        self.store
            .delete(&path)
            .await
            .map_err(|e| failed("DELETE", e))?;
        Ok(true)
    }

    pub async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<(Vec<ObjectInfo>, bool), StoreError> {
        let root = self.path(Some(bucket), "");
        let skip = root.parts().count();
        let mut listing = self.store.list(Some(&root));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| failed("LIST", e))?;
            let key = meta
                .location
                .parts()
                .skip(skip)
                .map(|p| {
                    percent_encoding::percent_decode_str(p.as_ref())
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect::<Vec<_>>()
                .join("/");
            if key.starts_with(prefix) {
                out.push(ObjectInfo {
                    key,
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }

    pub async fn buckets(&self) -> Result<Vec<String>, StoreError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.path(None, "")))
            .await
            .map_err(|e| failed("LIST", e))?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|b| modelfn_core::objects::check_bucket(b).is_ok())
            .collect();
        out.sort();
        Ok(out)
    }
}
