//! Deploys: a package becomes a serving version atomically (unpack, manifest, layers,
//! sizes, a first start, then record and swap); layers are published here too.

use crate::{ControlError, ControlPlane, FunctionInfo};
use bytes::Bytes;
use modelfn_core::manifest::parse_layer_ref;
use modelfn_core::manifest::MANIFEST_FILE;
use modelfn_core::ScalingConfig;
use modelfn_core::{FunctionName, FunctionSpec, Manifest};
use modelfn_registry::package::mb;
use modelfn_registry::{FunctionRecord, LayerRecord, LayerRef, NewVersion, PackageLimits};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a deploy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    #[serde(flatten)]
    pub layer: LayerRecord,
    pub compressed_limit: u64,
    pub unpacked_limit: u64,
}

impl ControlPlane {
    /// The spec of a recorded version, with the function's key (looked up once by the
    /// caller for all of a function's versions).
    pub(crate) async fn spec_of(
        &self,
        rec: &FunctionRecord,
        credentials: (String, String),
    ) -> Result<FunctionSpec, ControlError> {
        let manifest = Manifest::from_toml(&rec.manifest)
            .map_err(|e| ControlError::InvalidManifest(e.to_string()))?;
        let model = self.stored_model(&manifest).await?;
        let code_dir = self.code.code_dir(&rec.code_sha256).await?;
        let mut layers = Vec::new();
        for l in &rec.layers {
            layers.push(self.code.code_dir(&l.code_sha256).await?);
        }
        Ok(FunctionSpec {
            manifest,
            version: rec.version,
            code_dir,
            code_sha256: rec.code_sha256.clone(),
            layers,
            tuning: Default::default(),
            credentials: Some(credentials),
            model,
        })
    }

    /// Resolves a manifest's layer references to recorded layer versions.
    pub(crate) async fn resolve_layers(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<LayerRef>, ControlError> {
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
        archive: Bytes,
        description: &str,
    ) -> Result<LayerInfo, ControlError> {
        let compressed = archive.len() as u64;
        let added = self.code.add(archive, self.limits.layer).await?;
        let (digest, unpacked) = (added.digest, added.unpacked);
        let info = |layer| LayerInfo {
            layer,
            compressed_limit: self.limits.layer.max_compressed_bytes,
            unpacked_limit: self.limits.layer.max_unpacked_bytes,
        };
        // The same content again is the version that has it, as a deploy that changes
        // nothing is.
        let latest = self.meta.get_layer(name.as_str(), None).await?;
        if let Some(same) = latest.filter(|l| l.code_sha256 == digest) {
            return Ok(info(same));
        }
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
        Ok(info(layer))
    }

    pub async fn list_layers(&self) -> Result<Vec<LayerRecord>, ControlError> {
        Ok(self.meta.list_layers().await?)
    }

    /// Deploys a package (tar.gz with `modelfn.toml` at its root) as a new version.
    ///
    /// With `validate` false, the new version is recorded and served without starting it
    /// first (as Lambda does): a failing init is then reported by every invocation.
    pub async fn deploy(
        &self,
        archive: Bytes,
        name: Option<FunctionName>,
        validate: bool,
    ) -> Result<DeployOutcome, ControlError> {
        let added = self.code.add(archive, self.limits.function).await?;
        let (digest, code_dir, unpacked) = (added.digest, added.dir, added.unpacked);
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
        if let Some(model) = manifest.model.as_ref().filter(|m| m.store_ref().is_none()) {
            if !code_dir.join(&model.file).is_file() {
                return Err(ControlError::InvalidPackage(format!(
                    "model.file = {:?} is not in the package",
                    model.file
                )));
            }
        }
        let name = manifest.name.to_string();
        let manifest_toml = manifest.to_toml();

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
            layer_dirs.push(self.code.code_dir(&l.code_sha256).await?);
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
        let model = self.stored_model(&manifest).await?;
        let spec = FunctionSpec {
            manifest,
            version: 0,
            code_dir,
            code_sha256: digest.clone(),
            layers: layer_dirs,
            tuning: Default::default(),
            credentials,
            model,
        };
        let took = if validate {
            let took = self.check_starts(Arc::new(spec.clone()), "").await?;
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
        // With provisioned concurrency of its own, it warms before calls move to it.
        let _floor = self.warm_new_latest(&rec).await;
        // Served once this node's reconciler has seen it.
        let pass = self.reconcile().await?;
        if let Some(why) = pass.failed.get(&name) {
            return Err(ControlError::Storage(format!(
                "version {} of '{name}' is recorded but this node cannot serve it: {why}",
                rec.version
            )));
        }
        tracing::info!(function = %name, version = rec.version, "deployed");
        Ok(DeployOutcome {
            created: true,
            function: self.info(rec),
            validated_in_ms: took,
        })
    }

    /// The run-time overrides stored for a function (`modelfn config`).
    pub(crate) async fn overrides(&self, name: &str) -> Result<ScalingConfig, ControlError> {
        match self.meta.get_config(name).await? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| ControlError::Storage(format!("stored config of '{name}': {e}"))),
            None => Ok(ScalingConfig::default()),
        }
    }

    /// A recorded version's scaling settings: its manifest's, under the stored overrides.
    pub(crate) async fn scaling_of(
        &self,
        name: &str,
        rec: &FunctionRecord,
    ) -> Result<ScalingConfig, ControlError> {
        let overrides = self.overrides(name).await?;
        Manifest::from_toml(&rec.manifest)
            .map(|m| m.scaling.overlay(&overrides))
            .map_err(|e| ControlError::InvalidManifest(e.to_string()))
    }
}
