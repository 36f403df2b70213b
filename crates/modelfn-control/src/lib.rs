//! The control plane: turns an uploaded package into a serving function version, and
//! keeps the registry (what exists) and the scheduler (what serves) in step.
//!
//! A deploy is atomic: the package is unpacked, its manifest checked and an instance
//! started from it before anything is recorded; only then is the new version written and
//! swapped in. A failure at any step leaves the previous version serving.

use modelfn_core::manifest::MANIFEST_FILE;
use modelfn_core::{
    FunctionName, FunctionSpec, Invocation, InvocationOutput, InvokeError, Manifest, ModelSpec,
};
use modelfn_registry::{ArtifactStore, FunctionRecord, MetadataStore, NewVersion, RegistryError};
use modelfn_scheduler::{FunctionStats, InvocationReport, Scheduler};
use serde::Serialize;
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

/// The control plane. Share it behind an `Arc`.
pub struct ControlPlane {
    meta: Arc<dyn MetadataStore>,
    artifacts: Arc<dyn ArtifactStore>,
    scheduler: Arc<Scheduler>,
    deploys: tokio::sync::Mutex<()>,
}

impl ControlPlane {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        artifacts: Arc<dyn ArtifactStore>,
        scheduler: Arc<Scheduler>,
    ) -> Self {
        ControlPlane {
            meta,
            artifacts,
            scheduler,
            deploys: tokio::sync::Mutex::new(()),
        }
    }

    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }

    /// Puts every recorded function back into service (at start-up). Answers how many were
    /// restored; a function that cannot be restored is logged and left recorded.
    pub async fn restore(&self) -> Result<usize, ControlError> {
        let mut restored = 0;
        for rec in self.meta.list().await? {
            match self.spec_of(&rec).await {
                Ok(spec) => {
                    self.scheduler.install(Arc::new(spec));
                    restored += 1;
                }
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
        Ok(FunctionSpec {
            manifest,
            version: rec.version,
            code_dir,
            code_sha256: rec.code_sha256.clone(),
        })
    }

    /// Deploys a package (tar.gz with `modelfn.toml` at its root) as a new version.
    pub async fn deploy(
        &self,
        archive: Vec<u8>,
        name: Option<FunctionName>,
    ) -> Result<DeployOutcome, ControlError> {
        let (digest, code_dir, unpacked) = self.artifacts.put_package(archive).await?;
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
        if let Some(current) = self.meta.get(&name).await? {
            if current.code_sha256 == digest
                && current.manifest == manifest_toml
                && self.scheduler.spec(&name).is_some()
            {
                return Ok(DeployOutcome {
                    created: false,
                    function: self.info(current),
                    validated_in_ms: None,
                });
            }
        }
        let mut spec = FunctionSpec {
            manifest,
            version: 0,
            code_dir,
            code_sha256: digest.clone(),
        };
        let took = self
            .scheduler
            .validate(Arc::new(spec.clone()))
            .await
            .map_err(|e| match e {
                InvokeError::InitFailed(m) => ControlError::InitFailed(m),
                other => ControlError::InitFailed(other.to_string()),
            })?;
        let rec = self
            .meta
            .put_version(NewVersion {
                name: name.clone(),
                runtime: spec.manifest.runtime.as_str().to_string(),
                manifest: manifest_toml,
                code_sha256: digest,
                code_size: unpacked.unpacked_bytes,
            })
            .await?;
        spec.version = rec.version;
        self.scheduler.install(Arc::new(spec));
        tracing::info!(function = %name, version = rec.version, "deployed");
        Ok(DeployOutcome {
            created: true,
            function: self.info(rec),
            validated_in_ms: Some(took.as_secs_f64() * 1e3),
        })
    }

    fn info(&self, rec: FunctionRecord) -> FunctionInfo {
        let manifest = Manifest::from_toml(&rec.manifest).ok();
        FunctionInfo {
            stats: self.scheduler.stats(&rec.name),
            description: manifest
                .as_ref()
                .map(|m| m.description.clone())
                .unwrap_or_default(),
            memory_mb: manifest.as_ref().map(|m| m.memory_mb).unwrap_or_default(),
            timeout_ms: manifest.as_ref().map(|m| m.timeout_ms).unwrap_or_default(),
            model: manifest.and_then(|m| m.model),
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
