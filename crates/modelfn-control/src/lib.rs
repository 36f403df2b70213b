//! The control plane: turns an uploaded package into a serving function version, and
//! keeps the registry (what exists) and the scheduler (what serves) in step.
//!
//! A deploy is atomic: the package is unpacked, its manifest checked and an instance
//! started from it before anything is recorded; only then is the new version written and
//! swapped in. A failure at any step leaves the previous version serving.
//!
//! [`keys`] holds access keys (sealed by [`secrets`]); [`plans`] usage plans.

pub mod keys;
pub mod plans;
pub mod secrets;

pub use keys::{AccessKey, FUNCTION_KEY_PREFIX};

use modelfn_core::manifest::parse_layer_ref;
use modelfn_core::manifest::MANIFEST_FILE;
use modelfn_core::ScalingConfig;
use modelfn_core::{
    FunctionName, FunctionSpec, Invocation, InvocationOutput, InvokeError, Manifest, ModelSpec,
};
use modelfn_registry::package::mb;
use modelfn_registry::{
    ArtifactStore, FunctionRecord, LayerRecord, LayerRef, MetadataStore, NewVersion, PackageLimits,
    RegistryError,
};
use modelfn_scheduler::{FunctionStats, InvocationReport, Scheduler};
use plans::{Admission, Meter, UsagePlan};
use secrets::Sealer;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Why a control-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The package is unusable: not an archive, a path escapes, no manifest.
    #[error("{0}")]
    InvalidPackage(String),
    /// The manifest is wrong.
    #[error("{0}")]
    InvalidManifest(String),
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The function does not start (a model that does not load, or disagrees with its manifest).
    #[error("the function does not start: {0}")]
    InitFailed(String),
    /// No such function.
    #[error("function '{0}' does not exist")]
    NotFound(String),
    /// No such layer (version), or no such saved event.
    #[error("{0}")]
    Missing(String),
    /// A request whose values do not fit together.
    #[error("{0}")]
    InvalidRequest(String),
    /// The platform failed (database, disk).
    #[error("{0}")]
    Storage(String),
}

impl From<RegistryError> for ControlError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::InvalidPackage(m) => ControlError::InvalidPackage(m),
            RegistryError::TooLarge(m) => ControlError::TooLarge(m),
            RegistryError::Storage(m) => ControlError::Storage(m),
        }
    }
}

/// A function as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionInfo {
    pub name: String,
    pub version: u64,
    pub runtime: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub memory_mb: u32,
    pub timeout_ms: u64,
    pub code_sha256: String,
    pub code_size: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerRef>,
    /// Code and layers unpacked, in bytes, against the limit.
    pub total_unpacked_size: u64,
    pub unpacked_size_limit: u64,
    /// The scaling settings in effect (manifest, then `modelfn config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingConfig>,
    /// The function URL's auth, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_auth: Option<UrlAuth>,
    /// Live counters (absent when the function is recorded but could not be restored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<FunctionStats>,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployOutcome {
    /// False when the same code and manifest were already serving (nothing changed).
    pub created: bool,
    pub function: FunctionInfo,
    /// How long the deploy-time start of the function took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated_in_ms: Option<f64>,
}

/// Size limits of packages and layers (Lambda's: 50 MB compressed for a function
/// package, 250 MB unpacked for a function with all its layers).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub function: PackageLimits,
    pub layer: PackageLimits,
    /// The function's code plus every layer, unpacked.
    pub total_unpacked_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        let mb = 1024 * 1024;
        Limits {
            function: PackageLimits::default(),
            layer: PackageLimits {
                max_compressed_bytes: 250 * mb,
                max_unpacked_bytes: 250 * mb,
            },
            total_unpacked_bytes: 250 * mb,
        }
    }
}

/// A published layer and how its sizes compare with the limits.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    #[serde(flatten)]
    pub layer: LayerRecord,
    pub compressed_limit: u64,
    pub unpacked_limit: u64,
}

/// `len` characters drawn uniformly from `alphabet`.
pub(crate) fn random_text(alphabet: &[u8], len: usize) -> Result<String, ControlError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)
            .map_err(|e| ControlError::Storage(format!("no randomness: {e}")))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % alphabet.len();
        for b in buf.iter().filter(|b| usize::from(**b) < limit) {
            if out.len() == len {
                break;
            }
            out.push(alphabet[usize::from(*b) % alphabet.len()] as char);
        }
    }
    Ok(out)
}

/// Who may call a function URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrlAuth {
    /// Anyone.
    None,
    /// Callers with a modelfn key in `x-api-key`.
    Key,
}

/// The control plane. Share it behind an `Arc`.
pub struct ControlPlane {
    /// Usage plans, mirrored from the registry, and their counters.
    plans: std::sync::RwLock<Vec<UsagePlan>>,
    meter: std::sync::Mutex<Meter>,
    /// Function URLs and their auth, mirrored from the registry (read on every URL call).
    urls: std::sync::RwLock<HashMap<String, UrlAuth>>,
    meta: Arc<dyn MetadataStore>,
    artifacts: Arc<dyn ArtifactStore>,
    scheduler: Arc<Scheduler>,
    limits: Limits,
    deploys: tokio::sync::Mutex<()>,
    sealer: Sealer,
    /// API keys seen valid (SHA-256 → key id), so a keyed request costs no database
    /// read; emptied when a key is deleted.
    api_keys: std::sync::RwLock<HashMap<String, String>>,
}

impl ControlPlane {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        artifacts: Arc<dyn ArtifactStore>,
        scheduler: Arc<Scheduler>,
        limits: Limits,
        sealer: Sealer,
    ) -> Self {
        ControlPlane {
            plans: std::sync::RwLock::new(Vec::new()),
            meter: std::sync::Mutex::new(Meter::default()),
            urls: std::sync::RwLock::new(HashMap::new()),
            meta,
            artifacts,
            scheduler,
            limits,
            deploys: tokio::sync::Mutex::new(()),
            sealer,
            api_keys: std::sync::RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub(crate) fn api_keys_seen(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, String>> {
        self.api_keys.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn remember_api_key(&self, hash: String, id: String) {
        let mut seen = self.api_keys.write().unwrap_or_else(|p| p.into_inner());
        if seen.len() < 100_000 {
            seen.insert(hash, id);
        }
    }

    pub(crate) fn forget_api_keys(&self) {
        self.api_keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }

    /// Puts every recorded function back into service (at start-up). Answers how many were
    /// restored; a function that cannot be restored is logged and left recorded.
    pub async fn restore(&self) -> Result<usize, ControlError> {
        let mut plans = Vec::new();
        for (name, json) in self.meta.list_plans().await? {
            match serde_json::from_str::<UsagePlan>(&json) {
                Ok(mut p) => {
                    p.name = name;
                    plans.push(p);
                }
                Err(e) => {
                    tracing::error!(plan = %name, error = %e, "a stored usage plan does not read")
                }
            }
        }
        *self.plans.write().unwrap_or_else(|p| p.into_inner()) = plans;
        let urls = self.meta.list_urls().await?;
        {
            let mut map = self.urls.write().unwrap_or_else(|p| p.into_inner());
            for (f, auth) in urls {
                map.insert(
                    f,
                    if auth == "key" {
                        UrlAuth::Key
                    } else {
                        UrlAuth::None
                    },
                );
            }
        }
        let mut restored = 0;
        for rec in self.meta.list().await? {
            match self.spec_of(&rec).await {
                Ok(spec) => match self.install(spec).await {
                    Ok(()) => restored += 1,
                    Err(e) => {
                        tracing::error!(function = %rec.name, error = %e, "could not restore function")
                    }
                },
                Err(e) => {
                    tracing::error!(function = %rec.name, error = %e, "could not restore function")
                }
            }
        }
        Ok(restored)
    }

    async fn spec_of(&self, rec: &FunctionRecord) -> Result<FunctionSpec, ControlError> {
        let manifest = Manifest::from_toml(&rec.manifest)
            .map_err(|e| ControlError::InvalidManifest(e.to_string()))?;
        let code_dir = self.artifacts.code_dir(&rec.code_sha256).await?;
        let mut layers = Vec::new();
        for l in &rec.layers {
            layers.push(self.artifacts.code_dir(&l.code_sha256).await?);
        }
        let credentials = Some(self.function_key(&rec.name).await?);
        Ok(FunctionSpec {
            manifest,
            version: rec.version,
            code_dir,
            code_sha256: rec.code_sha256.clone(),
            layers,
            tuning: Default::default(),
            credentials,
        })
    }

    /// Resolves a manifest's layer references to recorded layer versions.
    async fn resolve_layers(&self, manifest: &Manifest) -> Result<Vec<LayerRef>, ControlError> {
        let mut out = Vec::new();
        for r in &manifest.layers {
            let (name, version) = parse_layer_ref(r).map_err(ControlError::InvalidManifest)?;
            let rec = self.meta.get_layer(name.as_str(), version).await?.ok_or_else(|| {
                ControlError::InvalidManifest(match version {
                    Some(v) => format!("layer '{name}' has no version {v} (publish it with `modelfn layer publish {name} ...`)"),
                    None => format!("layer '{name}' does not exist (publish it with `modelfn layer publish {name} --requirements requirements.txt`)"),
                })
            })?;
            out.push(LayerRef {
                name: rec.name,
                version: rec.version,
                code_sha256: rec.code_sha256,
                unpacked_size: rec.unpacked_size,
            });
        }
        Ok(out)
    }

    /// Publishes a layer (tar.gz of its directory) as a new version.
    pub async fn publish_layer(
        &self,
        name: &FunctionName,
        archive: Vec<u8>,
        description: &str,
    ) -> Result<LayerInfo, ControlError> {
        let compressed = archive.len() as u64;
        let (digest, _dir, unpacked) = self
            .artifacts
            .put_package(archive, self.limits.layer)
            .await?;
        let layer = self
            .meta
            .put_layer(
                name.as_str(),
                &digest,
                compressed,
                unpacked.unpacked_bytes,
                description,
            )
            .await?;
        tracing::info!(layer = %name, version = layer.version, "layer published");
        Ok(LayerInfo {
            layer,
            compressed_limit: self.limits.layer.max_compressed_bytes,
            unpacked_limit: self.limits.layer.max_unpacked_bytes,
        })
    }

    pub async fn list_layers(&self) -> Result<Vec<LayerRecord>, ControlError> {
        Ok(self.meta.list_layers().await?)
    }

    /// Stores an API definition (checked by the gateway, which compiles it).
    pub async fn save_api(&self, name: &str, definition: &str) -> Result<(), ControlError> {
        Ok(self.meta.put_api(name, definition).await?)
    }

    /// Every stored API definition: (name, text).
    pub async fn apis(&self) -> Result<Vec<(String, String)>, ControlError> {
        Ok(self.meta.list_apis().await?)
    }

    pub async fn delete_api(&self, name: &str) -> Result<(), ControlError> {
        if self.meta.delete_api(name).await? {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "API '{name}' does not exist"
            )))
        }
    }

    /// Gives a function a URL (or changes its auth).
    pub async fn create_url(&self, function: &str, auth: UrlAuth) -> Result<(), ControlError> {
        self.describe(function).await?;
        self.meta
            .put_url(function, if auth == UrlAuth::Key { "key" } else { "none" })
            .await?;
        self.urls
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(function.to_string(), auth);
        Ok(())
    }

    pub async fn delete_url(&self, function: &str) -> Result<(), ControlError> {
        self.urls
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(function);
        if self.meta.delete_url(function).await? {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "function '{function}' has no URL"
            )))
        }
    }

    /// The auth of a function's URL, if it has one.
    pub fn url_auth(&self, function: &str) -> Option<UrlAuth> {
        self.urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
            .copied()
    }

    /// Decides a request carrying `presented` as `x-api-key` on `target` (`api/STAGE` or
    /// `url:FUNCTION`): a valid key, held by a usage plan of the target, within that
    /// plan's rate, burst and quota.
    pub async fn admit_key(
        &self,
        target: &str,
        presented: &str,
    ) -> Result<Admission, ControlError> {
        let Some(key) = self.api_key_owner(presented).await? else {
            return Ok(Admission::Forbidden("a valid x-api-key is required".into()));
        };
        let plans = self.plans.read().unwrap_or_else(|p| p.into_inner());
        let governing: Vec<&UsagePlan> = plans
            .iter()
            .filter(|p| p.targets.iter().any(|t| t == target))
            .collect();
        let mut meter = self.meter.lock().unwrap_or_else(|p| p.into_inner());
        // As on API Gateway, a key works only where a usage plan holding it applies.
        match governing.iter().find(|p| p.keys.contains(&key)) {
            Some(plan) => Ok(meter.admit(plan, &key)),
            None => Ok(Admission::Forbidden(format!(
                "this key is not in a usage plan of {target}: add it to one (modelfn plans create NAME --rate R --burst B --target {target} --key ID)"
            ))),
        }
    }

    /// Creates or replaces a usage plan.
    pub async fn save_plan(&self, plan: UsagePlan) -> Result<UsagePlan, ControlError> {
        plan.validate().map_err(ControlError::InvalidRequest)?;
        let json =
            serde_json::to_string(&plan).map_err(|e| ControlError::Storage(e.to_string()))?;
        self.meta.put_plan(&plan.name, &json).await?;
        let mut plans = self.plans.write().unwrap_or_else(|p| p.into_inner());
        plans.retain(|p| p.name != plan.name);
        plans.push(plan.clone());
        Ok(plan)
    }

    pub fn plans(&self) -> Vec<UsagePlan> {
        self.plans.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn delete_plan(&self, name: &str) -> Result<(), ControlError> {
        self.plans
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p.name != name);
        if self.meta.delete_plan(name).await? {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "usage plan '{name}' does not exist"
            )))
        }
    }

    /// Requests per day made with a key (since the server started).
    pub fn key_usage(&self, id: &str) -> BTreeMap<String, u64> {
        self.meter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .usage(id)
    }

    /// Saves a named test event for a function.
    pub async fn save_event(
        &self,
        function: &str,
        name: &FunctionName,
        body: &[u8],
    ) -> Result<(), ControlError> {
        self.describe(function).await?;
        Ok(self.meta.put_event(function, name.as_str(), body).await?)
    }

    pub async fn event(&self, function: &str, name: &str) -> Result<Vec<u8>, ControlError> {
        self.describe(function).await?;
        self.meta.get_event(function, name).await?.ok_or_else(|| {
            ControlError::Missing(format!("function '{function}' has no saved event '{name}'"))
        })
    }

    pub async fn list_events(&self, function: &str) -> Result<Vec<String>, ControlError> {
        self.describe(function).await?;
        Ok(self.meta.list_events(function).await?)
    }

    /// Deploys a package (tar.gz with `modelfn.toml` at its root) as a new version.
    ///
    /// With `validate` false, the new version is recorded and served without starting it
    /// first (as Lambda does): a failing init is then reported by every invocation.
    pub async fn deploy(
        &self,
        archive: Vec<u8>,
        name: Option<FunctionName>,
        validate: bool,
    ) -> Result<DeployOutcome, ControlError> {
        let (digest, code_dir, unpacked) = self
            .artifacts
            .put_package(archive, self.limits.function)
            .await?;
        let manifest_path = code_dir.join(MANIFEST_FILE);
        let text = tokio::fs::read_to_string(&manifest_path)
            .await
            .map_err(|_| {
                ControlError::InvalidPackage(format!(
                    "the package has no {MANIFEST_FILE} at its root"
                ))
            })?;
        let mut manifest =
            Manifest::from_toml(&text).map_err(|e| ControlError::InvalidManifest(e.to_string()))?;
        if let Some(name) = name {
            manifest.name = name;
        }
        if let Some(model) = &manifest.model {
            if !code_dir.join(&model.file).is_file() {
                return Err(ControlError::InvalidPackage(format!(
                    "model.file = {:?} is not in the package",
                    model.file
                )));
            }
        }
        let name = manifest.name.to_string();
        let manifest_toml = manifest.to_toml();

        let _guard = self.deploys.lock().await;
        let layers = self.resolve_layers(&manifest).await?;
        let total: u64 =
            unpacked.unpacked_bytes + layers.iter().map(|l| l.unpacked_size).sum::<u64>();
        if total > self.limits.total_unpacked_bytes {
            let parts: Vec<String> =
                std::iter::once(format!("code {}", mb(unpacked.unpacked_bytes)))
                    .chain(
                        layers.iter().map(|l| {
                            format!("layer {}:{} {}", l.name, l.version, mb(l.unpacked_size))
                        }),
                    )
                    .collect();
            return Err(ControlError::TooLarge(format!(
                "the function and its layers unpack to {} ({}); the limit is {}",
                mb(total),
                parts.join(", "),
                mb(self.limits.total_unpacked_bytes)
            )));
        }
        let mut layer_dirs = Vec::new();
        for l in &layers {
            layer_dirs.push(self.artifacts.code_dir(&l.code_sha256).await?);
        }
        if let Some(current) = self.meta.get(&name).await? {
            if current.code_sha256 == digest
                && current.manifest == manifest_toml
                && current.layers == layers
                && self.scheduler.spec(&name).is_some()
            {
                return Ok(DeployOutcome {
                    created: false,
                    function: self.info(current),
                    validated_in_ms: None,
                });
            }
        }
        let credentials = Some(self.function_key(&name).await?);
        let mut spec = FunctionSpec {
            manifest,
            version: 0,
            code_dir,
            code_sha256: digest.clone(),
            layers: layer_dirs,
            tuning: Default::default(),
            credentials,
        };
        let took = if validate {
            let took = self
                .scheduler
                .validate(Arc::new(spec.clone()))
                .await
                .map_err(|e| {
                    ControlError::InitFailed(if let InvokeError::InitFailed(f) = &e {
                        f.to_string()
                    } else {
                        e.to_string()
                    })
                })?;
            Some(took.as_secs_f64() * 1e3)
        } else {
            None
        };
        let rec = self
            .meta
            .put_version(NewVersion {
                name: name.clone(),
                runtime: spec.manifest.runtime.as_str().to_string(),
                manifest: manifest_toml,
                code_sha256: digest,
                code_size: unpacked.unpacked_bytes,
                layers,
            })
            .await?;
        spec.version = rec.version;
        self.install(spec).await?;
        tracing::info!(function = %name, version = rec.version, "deployed");
        Ok(DeployOutcome {
            created: true,
            function: self.info(rec),
            validated_in_ms: took,
        })
    }

    /// The run-time overrides stored for a function (`modelfn config`).
    async fn overrides(&self, name: &str) -> Result<ScalingConfig, ControlError> {
        match self.meta.get_config(name).await? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| ControlError::Storage(format!("stored config of '{name}': {e}"))),
            None => Ok(ScalingConfig::default()),
        }
    }

    /// Serves `spec` with its manifest's scaling settings overlaid by the stored overrides.
    async fn install(&self, spec: FunctionSpec) -> Result<(), ControlError> {
        let name = spec.manifest.name.to_string();
        let scaling = spec.manifest.scaling.overlay(&self.overrides(&name).await?);
        self.scheduler
            .install(Arc::new(spec), scaling)
            .map_err(|e| ControlError::Storage(e.to_string()))
    }

    /// Changes a function's scaling settings at run time: `patch`'s fields replace the
    /// stored ones (all of them with `replace`); the manifest's apply where neither sets one.
    pub async fn configure(
        &self,
        name: &str,
        patch: ScalingConfig,
        replace: bool,
    ) -> Result<FunctionInfo, ControlError> {
        let _guard = self.deploys.lock().await;
        let rec = self
            .meta
            .get(name)
            .await?
            .ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        let manifest = Manifest::from_toml(&rec.manifest)
            .map_err(|e| ControlError::InvalidManifest(e.to_string()))?;
        let stored = if replace {
            patch
        } else {
            self.overrides(name).await?.overlay(&patch)
        };
        let effective = manifest.scaling.overlay(&stored);
        effective.validate().map_err(ControlError::InvalidRequest)?;
        let json =
            serde_json::to_string(&stored).map_err(|e| ControlError::Storage(e.to_string()))?;
        self.meta.put_config(name, &json).await?;
        if self.scheduler.spec(name).is_some() {
            self.scheduler
                .configure(name, effective)
                .map_err(|e| ControlError::Storage(e.to_string()))?;
        }
        tracing::info!(function = %name, "scaling configured");
        Ok(self.info(rec))
    }

    fn info(&self, rec: FunctionRecord) -> FunctionInfo {
        let manifest = Manifest::from_toml(&rec.manifest).ok();
        FunctionInfo {
            stats: self.scheduler.stats(&rec.name),
            scaling: self.scheduler.scaling(&rec.name),
            url_auth: self.url_auth(&rec.name),
            description: manifest
                .as_ref()
                .map(|m| m.description.clone())
                .unwrap_or_default(),
            memory_mb: manifest.as_ref().map(|m| m.memory_mb).unwrap_or_default(),
            timeout_ms: manifest.as_ref().map(|m| m.timeout_ms).unwrap_or_default(),
            handler: manifest.as_ref().and_then(|m| m.handler.clone()),
            model: manifest.and_then(|m| m.model),
            total_unpacked_size: rec.code_size
                + rec.layers.iter().map(|l| l.unpacked_size).sum::<u64>(),
            unpacked_size_limit: self.limits.total_unpacked_bytes,
            layers: rec.layers,
            name: rec.name,
            version: rec.version,
            runtime: rec.runtime,
            code_sha256: rec.code_sha256,
            code_size: rec.code_size,
            created_at_ms: rec.created_at_ms,
            updated_at_ms: rec.updated_at_ms,
        }
    }

    pub async fn list(&self) -> Result<Vec<FunctionInfo>, ControlError> {
        Ok(self
            .meta
            .list()
            .await?
            .into_iter()
            .map(|r| self.info(r))
            .collect())
    }

    pub async fn describe(&self, name: &str) -> Result<FunctionInfo, ControlError> {
        let rec = self
            .meta
            .get(name)
            .await?
            .ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        Ok(self.info(rec))
    }

    /// Deletes a function: it stops serving at once; requests in flight finish.
    pub async fn delete(&self, name: &str) -> Result<(), ControlError> {
        let _guard = self.deploys.lock().await;
        let existed = self.meta.delete(name).await?;
        self.scheduler.remove(name);
        self.delete_keys_named(&format!("{FUNCTION_KEY_PREFIX}{name}"))
            .await?;
        self.urls
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if existed {
            Ok(())
        } else {
            Err(ControlError::NotFound(name.to_string()))
        }
    }

    /// Runs one invocation.
    pub async fn invoke(
        &self,
        name: &str,
        inv: Invocation,
    ) -> Result<(InvocationOutput, InvocationReport), InvokeError> {
        self.scheduler.invoke(name, inv).await
    }
}
