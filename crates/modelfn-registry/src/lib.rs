//! Where functions live: metadata (which functions exist, their versions and manifests,
//! and the log of changes to them) and blobs (the uploaded packages, content-addressed),
//! each behind traits so that the embedded defaults (SQLite, a local directory) can be
//! swapped for PostgreSQL and S3; and the node-local [`CodeCache`] that unpacks blobs.

pub mod blobs;
pub mod code_cache;
pub mod metadata;
pub mod nodes;
pub mod package;
pub mod s3;
pub mod sql;
pub mod tar_guard;

pub use blobs::{BlobStore, LocalBlobStore};
pub use code_cache::{AddedPackage, CodeCache};
pub use metadata::{
    AccessKeyRecord, AliasRecord, AliasStore, ApiRecord, Change, ChangeKind, ChangeLog, Changes,
    DocRecord, EdgeStore, FunctionRecord, FunctionStore, LayerRecord, LayerRef, LayerStore,
    MetadataStore, ModelHead, ModelRecord, ModelStore, NewVersion, PlanRecord, ProvisionedRecord,
    ShadowTarget, UrlAuth, UrlRecord, VersionDeleted,
};
pub use nodes::{NodeRecord, NodeStore};
pub use package::{PackageLimits, UnpackedPackage};
pub use s3::S3BlobStore;
pub use sql::{Backend, ChangeWatch, SqlMetadataStore};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The uploaded package is unusable (the client's fault).
    #[error("{0}")]
    InvalidPackage(String),
    /// The package is over a size limit (the client's fault).
    #[error("{0}")]
    TooLarge(String),
    /// A write that no longer fits what is recorded (the caller's to fix).
    #[error("{0}")]
    Conflict(String),
    /// The database or the disk failed (the platform's fault).
    #[error("storage error: {0}")]
    Storage(String),
    /// No database connection came free in time: the platform is overloaded, and the
    /// same request may succeed in a moment (a 503 with `Retry-After`, not a 500).
    #[error("the database is busy: {0}")]
    Busy(String),
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            RegistryError::Busy(e.to_string())
        } else {
            RegistryError::Storage(e.to_string())
        }
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        RegistryError::Storage(e.to_string())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The store traits, for calling their methods: `use modelfn_registry::prelude::*;`.
pub mod prelude {
    pub use crate::blobs::BlobStore;
    pub use crate::metadata::{
        AliasStore, ChangeLog, EdgeStore, FunctionStore, LayerStore, MetadataStore, ModelStore,
    };
    pub use crate::nodes::NodeStore;
}

#[cfg(test)]
mod tests {
    use super::RegistryError;

    #[test]
    fn a_pool_timeout_is_busy_and_other_failures_are_storage_errors() {
        assert!(matches!(
            RegistryError::from(sqlx::Error::PoolTimedOut),
            RegistryError::Busy(_)
        ));
        assert!(matches!(
            RegistryError::from(sqlx::Error::PoolClosed),
            RegistryError::Storage(_)
        ));
    }
}
