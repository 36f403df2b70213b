//! The blob store on an S3-compatible service (AWS S3, MinIO, Ceph, moto...), through the
//! `object_store` crate: `s3://bucket/prefix` holds one object per blob, named by its
//! digest under `prefix/blobs/sha256/`. Credentials, region and endpoint come from the
//! usual `AWS_*` variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`), as for the aws CLI.

use crate::blobs::{check_digest, BlobStore};
use crate::RegistryError;
use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

/// Blobs in an S3 bucket, under a prefix.
pub struct S3BlobStore {
    store: AmazonS3,
    prefix: String,
    url: String,
    /// Largest object `get` reads; a larger one is an error, never buffered.
    max_bytes: u64,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3BlobStore({})", self.url)
    }
}

/// Splits `s3://bucket/some/prefix` into the bucket and the prefix (without slashes at
/// either end); anything else is refused with the reason.
pub fn parse_s3_url(url: &str) -> Result<(String, String), RegistryError> {
    let bad = |why: &str| RegistryError::Storage(format!("bad artifacts URL {url:?}: {why}"));
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("it must start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(bad(
            "the bucket must be 3 to 63 lower-case letters, digits, '-' or '.'",
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix
        .split('/')
        .any(|p| p == "." || p == ".." || (p.is_empty() && !prefix.is_empty()))
    {
        return Err(bad("the prefix has an empty, '.' or '..' segment"));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// Makes ring the process's TLS cryptography. reqwest 0.13 is built with rustls and no
/// provider of its own (for this store), so every reqwest 0.13 client in the process (the
/// OTLP exporter's too) needs this before it is built; a second call is harmless.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The bucket of `s3://bucket/prefix`, configured from the `AWS_*` environment, and the
/// prefix: for what else a cluster keeps in the bucket (the buckets of `/v1/buckets`).
pub fn bucket_from_env(
    url: &str,
) -> Result<(std::sync::Arc<dyn object_store::ObjectStore>, String), RegistryError> {
    let s = S3BlobStore::from_env(url, 0)?;
    Ok((std::sync::Arc::new(s.store), s.prefix))
}

impl S3BlobStore {
    /// A store for `s3://bucket/prefix`, configured from the `AWS_*` environment, that
    /// reads no object over `max_bytes`.
    pub fn from_env(url: &str, max_bytes: u64) -> Result<Self, RegistryError> {
        Self::build(url, AmazonS3Builder::from_env(), max_bytes)
    }

    /// A store for `s3://bucket/prefix` on `endpoint` with these credentials (tests, and
    /// services that are not AWS).
    pub fn with_endpoint(
        url: &str,
        endpoint: &str,
        region: &str,
        key_id: &str,
        secret: &str,
        max_bytes: u64,
    ) -> Result<Self, RegistryError> {
        let builder = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_region(region)
            .with_access_key_id(key_id)
            .with_secret_access_key(secret);
        Self::build(url, builder, max_bytes)
    }

    fn build(url: &str, builder: AmazonS3Builder, max_bytes: u64) -> Result<Self, RegistryError> {
        let (bucket, prefix) = parse_s3_url(url)?;
        install_tls();
        let store = builder
            .with_bucket_name(&bucket)
            .build()
            .map_err(|e| RegistryError::Storage(format!("cannot use {url}: {e}")))?;
        Ok(S3BlobStore {
            store,
            prefix,
            url: url.to_string(),
            max_bytes,
        })
    }

    fn path(&self, digest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(format!("blobs/sha256/{digest}"))
        } else {
            Path::from(format!("{}/blobs/sha256/{digest}", self.prefix))
        }
    }

    /// `None` when `e` says no object has the name; a missing bucket is an error (S3
    /// answers 404 for both, `NoSuchKey` or `NoSuchBucket`).
    fn not_found<T>(&self, e: object_store::Error, what: &str) -> Result<Option<T>, RegistryError> {
        let missing_key = matches!(e, object_store::Error::NotFound { .. })
            && !e.to_string().contains("NoSuchBucket");
        if missing_key {
            Ok(None)
        } else {
            Err(self.error(what, e))
        }
    }

    fn error(&self, what: &str, e: object_store::Error) -> RegistryError {
        RegistryError::Storage(format!("{what} on {} failed: {e}", self.url))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, digest: &str, data: Bytes) -> Result<(), RegistryError> {
        check_digest(digest)?;
        let path = self.path(digest);
        // Content-addressed: an object already there holds these very bytes.
        match self.store.head(&path).await {
            Ok(_) => return Ok(()),
            Err(e) => self.not_found::<()>(e, "HEAD").map(|_| ())?,
        }
        self.store
            .put(&path, PutPayload::from_bytes(data))
            .await
            .map_err(|e| self.error("PUT", e))?;
        Ok(())
    }

    async fn get(&self, digest: &str) -> Result<Option<Bytes>, RegistryError> {
        check_digest(digest)?;
        match self.store.get(&self.path(digest)).await {
            Ok(found) if found.meta.size > self.max_bytes => Err(RegistryError::Storage(format!(
                "blob {digest} on {} is {} bytes, over the limit of {}",
                self.url, found.meta.size, self.max_bytes
            ))),
            Ok(found) => Ok(Some(found.bytes().await.map_err(|e| self.error("GET", e))?)),
            Err(e) => self.not_found(e, "GET"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_s3_url;

    #[test]
    fn urls_are_bucket_and_prefix() {
        let ok = |u: &str| parse_s3_url(u).map_err(|e| e.to_string());
        assert_eq!(ok("s3://models"), Ok(("models".into(), "".into())));
        assert_eq!(
            ok("s3://models/prod/eu/"),
            Ok(("models".into(), "prod/eu".into()))
        );
        for bad in [
            "models",
            "http://models",
            "s3://",
            "s3://ab",
            "s3://Models",
            "s3://models/a//b",
            "s3://models/../x",
            "s3://models/a/./b",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }
}
