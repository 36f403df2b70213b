//! Metadata: which functions exist and their versions, layers, keys, URLs, APIs and
//! plans, as typed records behind five traits that [`MetadataStore`] gathers (SQLite in
//! [`crate::sql`], on SQLite or PostgreSQL).
//!
//! Every write that changes what a node serves is also a [`Change`] in a log, numbered by
//! one generation counter in the same transaction: a node's reconciler reads the log from
//! the last generation it applied (see `modelfn-control`'s `reconcile`).

use crate::nodes::NodeStore;
use crate::RegistryError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRef {
    pub name: String,
    pub version: u64,
    pub code_sha256: String,
    pub unpacked_size: u64,
}

/// A published layer version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// An access key as listed (its secrets are never listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    /// May change what serves through the AWS management calls (provisioned
    /// concurrency, SageMaker endpoint weights), not only invoke and read.
    pub manage: bool,
}

/// Who may call a function URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrlAuth {
    /// Anyone.
    None,
    /// Callers with a modelfn key in `x-api-key`.
    Key,
}

impl UrlAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlAuth::None => "none",
            UrlAuth::Key => "key",
        }
    }

    pub fn parse(s: &str) -> Option<UrlAuth> {
        match s {
            "none" => Some(UrlAuth::None),
            "key" => Some(UrlAuth::Key),
            _ => None,
        }
    }
}

/// A function URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRecord {
    pub function: String,
    pub auth: UrlAuth,
    /// The version or alias it calls (`None`: `$LATEST`).
    pub qualifier: Option<String>,
}

/// A named document the store keeps as text and the control plane or gateway reads: a
/// usage plan (JSON) or an API definition (TOML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord {
    pub name: String,
    pub definition: String,
}

/// A usage plan as stored (its definition is JSON).
pub type PlanRecord = DocRecord;
/// An API as stored (its definition is the file applied).
pub type ApiRecord = DocRecord;

/// What a change touched; the reconciler re-reads that object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A function's version (a deploy) or its deletion.
    Function,
    /// A function's aliases (the name is the function's).
    Alias,
    /// A function's run-time configuration.
    Config,
    /// An access key.
    Key,
    /// A function URL.
    Url,
    /// A usage plan.
    Plan,
    /// An API definition.
    Api,
    /// A named model's current revision (the name is the model's).
    Model,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Function => "function",
            ChangeKind::Alias => "alias",
            ChangeKind::Config => "config",
            ChangeKind::Key => "key",
            ChangeKind::Url => "url",
            ChangeKind::Plan => "plan",
            ChangeKind::Api => "api",
            ChangeKind::Model => "model",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Function,
            ChangeKind::Alias,
            ChangeKind::Config,
            ChangeKind::Key,
            ChangeKind::Url,
            ChangeKind::Plan,
            ChangeKind::Api,
            ChangeKind::Model,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One write to desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub generation: u64,
    pub kind: ChangeKind,
    /// The object's name (a function, key id, plan or API).
    pub name: String,
}

/// The changes after a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The store's generation when read: every change up to it is in `changes` (when
    /// `complete`).
    pub generation: u64,
    pub changes: Vec<Change>,
    /// False when the log no longer reaches back to the generation asked for (it is
    /// trimmed): the reader must reload everything.
    pub complete: bool,
}

/// What deleting one version did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionDeleted {
    Deleted,
    /// There is no such version.
    Missing,
    /// It is the function's latest (delete the function, or deploy a newer version).
    Latest,
    /// These aliases route (or mirror) to it; `"URL"` among them when the function's URL
    /// is bound to it.
    UsedBy(Vec<String>),
}

/// Functions, their versions, run-time configuration and saved test events.
#[async_trait]
pub trait FunctionStore: Send + Sync + 'static {
    /// Adds a version and makes it the function's latest, creating the function if needed.
    /// The version number comes from a counter in the store, so concurrent deploys (on
    /// one node or many) get distinct numbers; numbers are never reused while the
    /// function exists.
    async fn put_version(&self, v: NewVersion) -> Result<FunctionRecord, RegistryError>;
    async fn get(&self, name: &str) -> Result<Option<FunctionRecord>, RegistryError>;
    async fn list(&self) -> Result<Vec<FunctionRecord>, RegistryError>;
    /// One version of a function (its latest or an older one).
    async fn get_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<FunctionRecord>, RegistryError>;
    /// Every version of a function, oldest first (`created_at_ms` is the version's).
    async fn list_versions(&self, name: &str) -> Result<Vec<FunctionRecord>, RegistryError>;
    /// Deletes one version, unless it is the latest or an alias routes to it (checked in
    /// the same transaction, so a concurrent alias move cannot slip between).
    async fn delete_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<VersionDeleted, RegistryError>;
    /// Deletes a function and its versions, configuration, URL and events; answers
    /// whether it existed.
    async fn delete(&self, name: &str) -> Result<bool, RegistryError>;

    /// A function's run-time configuration (JSON), set by `put_config`.
    async fn get_config(&self, function: &str) -> Result<Option<String>, RegistryError>;
    async fn put_config(&self, function: &str, json: &str) -> Result<(), RegistryError>;

    /// Saves (or replaces) a named test event of a function.
    async fn put_event(&self, function: &str, name: &str, body: &[u8])
        -> Result<(), RegistryError>;
    async fn get_event(&self, function: &str, name: &str)
        -> Result<Option<Vec<u8>>, RegistryError>;
    /// The names of a function's saved events.
    async fn list_events(&self, function: &str) -> Result<Vec<String>, RegistryError>;
}

/// Layers: immutable versions, numbered per name by a counter in the store.
#[async_trait]
pub trait LayerStore: Send + Sync + 'static {
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
}

/// An alias: a name for one or more versions of a function, with weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub function: String,
    pub name: String,
    /// `(version, weight)` pairs; the weights add up to 100.
    pub routing: Vec<(u64, u32)>,
    /// Where a caller's routing key is read (`header:NAME` or `json:FIELD`), so one key
    /// always lands on one version; none: each call is drawn by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<String>,
    /// A challenger version that a share of the alias's calls is mirrored to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowTarget>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When it was last moved (or, in the history, this move), and by whom.
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// Provisioned concurrency set on a version (`"3"`) or an alias (`"prod"`): how many
/// instances stay started for it. An alias's count is split over its versions by weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedRecord {
    pub function: String,
    pub qualifier: String,
    pub count: u32,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// Shadow traffic: `percent` of an alias's calls also run on `version`, whose answers
/// are compared with the ones returned, never returned themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowTarget {
    pub version: u64,
    pub percent: u32,
}

/// One revision of a named model in the model store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub revision: u64,
    /// SHA-256 of the model file, hex (its key in the blob store).
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub created_at_ms: i64,
    pub created_by: String,
}

/// A named model's current revision: what `store:NAME` means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelHead {
    pub name: String,
    pub revision: u64,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// Named models, their revisions, and which revision is current.
#[async_trait]
pub trait ModelStore: Send + Sync + 'static {
    /// Records a new revision (numbered 1, 2, ... per model); does not make it current.
    async fn add_model_revision(
        &self,
        name: &str,
        sha256: &str,
        size: u64,
        description: &str,
        by: &str,
    ) -> Result<ModelRecord, RegistryError>;
    /// One revision, or the current one when `revision` is `None`.
    async fn get_model(
        &self,
        name: &str,
        revision: Option<u64>,
    ) -> Result<Option<ModelRecord>, RegistryError>;
    /// A model's revisions, oldest first.
    async fn list_model_revisions(&self, name: &str) -> Result<Vec<ModelRecord>, RegistryError>;
    /// Every model's current revision, by name.
    async fn list_model_heads(&self) -> Result<Vec<ModelHead>, RegistryError>;
    /// Makes a recorded revision current (a change of kind `Model`).
    async fn set_model_head(
        &self,
        name: &str,
        revision: u64,
        by: &str,
    ) -> Result<(), RegistryError>;
}

/// Aliases, the history of their moves, and provisioned concurrency per qualifier.
#[async_trait]
pub trait AliasStore: Send + Sync + 'static {
    /// Creates or moves an alias (and appends the move to its history).
    async fn put_alias(&self, alias: &AliasRecord) -> Result<(), RegistryError>;
    async fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, RegistryError>;
    /// Answers whether it existed (its deletion is in the history too, with no routing).
    async fn delete_alias(
        &self,
        function: &str,
        name: &str,
        by: &str,
    ) -> Result<bool, RegistryError>;
    /// Every move of a function's aliases, oldest first.
    async fn alias_history(&self, function: &str) -> Result<Vec<AliasRecord>, RegistryError>;
    /// Sets provisioned concurrency on a version or an alias that exists (a `Conflict`
    /// otherwise), a change of kind `Config`. It goes with its version or alias.
    async fn put_provisioned(&self, p: &ProvisionedRecord) -> Result<(), RegistryError>;
    /// Answers whether there was one.
    async fn delete_provisioned(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<bool, RegistryError>;
    /// A function's provisioned concurrency settings, by qualifier.
    async fn list_provisioned(
        &self,
        function: &str,
    ) -> Result<Vec<ProvisionedRecord>, RegistryError>;
}

/// What the edge reads: access keys, function URLs, usage plans and APIs.
#[async_trait]
pub trait EdgeStore: Send + Sync + 'static {
    /// Records an access key: its id, name, secret as stored (sealed by the control
    /// plane) and the SHA-256 of its API key (empty: none).
    async fn put_access_key(
        &self,
        id: &str,
        name: &str,
        secret: &str,
        api_key_sha256: &str,
        manage: bool,
    ) -> Result<(), RegistryError>;
    /// The secret of an access key, as stored.
    async fn access_key_secret(&self, id: &str) -> Result<Option<String>, RegistryError>;
    /// Replaces the stored secret of an access key (sealing a clear one).
    async fn update_access_key_secret(&self, id: &str, secret: &str) -> Result<(), RegistryError>;
    /// Every access key, oldest first, without secrets.
    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, RegistryError>;
    /// Answers whether the key existed.
    async fn delete_access_key(&self, id: &str) -> Result<bool, RegistryError>;
    /// The access key whose API key has this SHA-256 (hex), for `x-api-key`; a key with no
    /// API key matches nothing, the empty string included.
    async fn access_key_by_secret_hash(
        &self,
        sha256_hex: &str,
    ) -> Result<Option<String>, RegistryError>;

    async fn list_urls(&self) -> Result<Vec<UrlRecord>, RegistryError>;
    async fn put_url(&self, url: &UrlRecord) -> Result<(), RegistryError>;
    async fn delete_url(&self, function: &str) -> Result<bool, RegistryError>;

    async fn list_plans(&self) -> Result<Vec<PlanRecord>, RegistryError>;
    async fn put_plan(&self, plan: &PlanRecord) -> Result<(), RegistryError>;
    async fn delete_plan(&self, name: &str) -> Result<bool, RegistryError>;

    async fn list_apis(&self) -> Result<Vec<ApiRecord>, RegistryError>;
    async fn put_api(&self, api: &ApiRecord) -> Result<(), RegistryError>;
    async fn delete_api(&self, name: &str) -> Result<bool, RegistryError>;

    /// Whether other nodes write to this store too (a cluster's PostgreSQL): then what
    /// must hold over all nodes, such as quotas, is counted here.
    fn shared(&self) -> bool;
    /// Counts up to `want` requests of `key` against `plan`'s `quota` in `period`, as
    /// many as the quota has left; answers how many were counted. One conditional
    /// upsert, so nodes counting at once never pass the quota between them.
    async fn take_quota(
        &self,
        plan: &str,
        key: &str,
        period: &str,
        want: u64,
        quota: u64,
    ) -> Result<u64, RegistryError>;
}

/// The log of changes to desired state.
#[async_trait]
pub trait ChangeLog: Send + Sync + 'static {
    /// The generation of the latest change.
    async fn generation(&self) -> Result<u64, RegistryError>;
    /// The changes after `generation`, oldest first, at most `limit` of them (then
    /// `Changes::generation` is that of the last one returned).
    async fn changes_since(&self, generation: u64, limit: u32) -> Result<Changes, RegistryError>;
}

/// Everything the registry records, as one object (`&dyn MetadataStore`).
pub trait MetadataStore:
    FunctionStore + LayerStore + AliasStore + EdgeStore + ModelStore + ChangeLog + NodeStore
{
}

impl<T> MetadataStore for T where
    T: FunctionStore + LayerStore + AliasStore + EdgeStore + ModelStore + ChangeLog + NodeStore
{
}
