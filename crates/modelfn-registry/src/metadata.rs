//! Metadata: which functions exist and their versions, layers, keys, URLs, APIs and
//! plans, as records behind the [`MetadataStore`] trait (SQLite in [`crate::sqlite`]).

use crate::RegistryError;
use async_trait::async_trait;

/// A function at its latest version.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRecord {
    pub name: String,
    pub version: u64,
    pub runtime: String,
    /// The manifest as TOML.
    pub manifest: String,
    pub code_sha256: String,
    pub code_size: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// The layer versions the function was deployed with.
    pub layers: Vec<LayerRef>,
}

/// A layer version a function uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRef {
    pub name: String,
    pub version: u64,
    pub code_sha256: String,
    pub unpacked_size: u64,
}

/// A published layer version.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerRecord {
    pub name: String,
    pub version: u64,
    pub code_sha256: String,
    pub compressed_size: u64,
    pub unpacked_size: u64,
    pub description: String,
    pub created_at_ms: i64,
}

/// What a deploy records.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub name: String,
    pub runtime: String,
    pub manifest: String,
    pub code_sha256: String,
    pub code_size: u64,
    pub layers: Vec<LayerRef>,
}

/// The metadata store.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Adds a version and makes it the function's latest, creating the function if needed.
    async fn put_version(&self, v: NewVersion) -> Result<FunctionRecord, RegistryError>;
    async fn get(&self, name: &str) -> Result<Option<FunctionRecord>, RegistryError>;
    async fn list(&self) -> Result<Vec<FunctionRecord>, RegistryError>;
    /// Deletes a function and its versions; answers whether it existed.
    async fn delete(&self, name: &str) -> Result<bool, RegistryError>;

    /// Records a new version of a layer.
    async fn put_layer(
        &self,
        name: &str,
        code_sha256: &str,
        compressed_size: u64,
        unpacked_size: u64,
        description: &str,
    ) -> Result<LayerRecord, RegistryError>;
    /// A layer version (the latest when `version` is `None`).
    async fn get_layer(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<LayerRecord>, RegistryError>;
    /// Every version of every layer.
    async fn list_layers(&self) -> Result<Vec<LayerRecord>, RegistryError>;

    /// Saves (or replaces) a named test event of a function.
    async fn put_event(&self, function: &str, name: &str, body: &[u8])
        -> Result<(), RegistryError>;
    async fn get_event(&self, function: &str, name: &str)
        -> Result<Option<Vec<u8>>, RegistryError>;
    /// The names of a function's saved events.
    async fn list_events(&self, function: &str) -> Result<Vec<String>, RegistryError>;

    /// Records an access key: its id, name, secret as stored (sealed by the control
    /// plane) and the SHA-256 of its API key (empty: none).
    async fn put_access_key(
        &self,
        id: &str,
        name: &str,
        secret: &str,
        api_key_sha256: &str,
    ) -> Result<(), RegistryError>;
    /// The secret of an access key, as stored.
    async fn access_key_secret(&self, id: &str) -> Result<Option<String>, RegistryError>;
    /// Replaces the stored secret of an access key (sealing a clear one).
    async fn update_access_key_secret(&self, id: &str, secret: &str) -> Result<(), RegistryError>;
    /// Every access key as (id, name, created at), without secrets.
    async fn list_access_keys(&self) -> Result<Vec<(String, String, i64)>, RegistryError>;
    /// Answers whether the key existed.
    async fn delete_access_key(&self, id: &str) -> Result<bool, RegistryError>;

    /// The access key whose API key has this SHA-256 (hex), for `x-api-key`; a key with no
    /// API key matches nothing, the empty string included.
    async fn access_key_by_secret_hash(
        &self,
        sha256_hex: &str,
    ) -> Result<Option<String>, RegistryError>;
    /// Function URLs: (function, auth) pairs.
    async fn list_urls(&self) -> Result<Vec<(String, String)>, RegistryError>;
    async fn put_url(&self, function: &str, auth: &str) -> Result<(), RegistryError>;
    async fn delete_url(&self, function: &str) -> Result<bool, RegistryError>;

    /// Usage plans: (name, definition JSON).
    async fn list_plans(&self) -> Result<Vec<(String, String)>, RegistryError>;
    async fn put_plan(&self, name: &str, definition: &str) -> Result<(), RegistryError>;
    async fn delete_plan(&self, name: &str) -> Result<bool, RegistryError>;

    /// API definitions: (name, definition text).
    async fn list_apis(&self) -> Result<Vec<(String, String)>, RegistryError>;
    async fn put_api(&self, name: &str, definition: &str) -> Result<(), RegistryError>;
    async fn delete_api(&self, name: &str) -> Result<bool, RegistryError>;

    /// A function's run-time configuration (JSON), set by `put_config`.
    async fn get_config(&self, function: &str) -> Result<Option<String>, RegistryError>;
    async fn put_config(&self, function: &str, json: &str) -> Result<(), RegistryError>;
}
