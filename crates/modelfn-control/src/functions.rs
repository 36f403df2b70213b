//! Functions as the admin API sees them: list, describe, configure, delete.

use crate::{ControlError, ControlPlane, UrlAuth, FUNCTION_KEY_PREFIX};
use modelfn_core::ScalingConfig;
use modelfn_core::{Manifest, ModelSpec};
use modelfn_registry::{FunctionRecord, LayerRef};
use modelfn_scheduler::FunctionStats;
use serde::{Deserialize, Serialize};

/// A function as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub name: String,
    pub version: u64,
    pub runtime: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    /// Why the node that answered does not serve it (its last pass failed to install
    /// it; retried every pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_served: Option<String>,
}

/// A function as `describe` shows it: its info, its aliases with every move of them
/// (when, and by which key), and its provisioned concurrency per version or alias.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDetail {
    #[serde(flatten)]
    pub function: FunctionInfo,
    #[serde(default)]
    pub aliases: Vec<modelfn_registry::AliasRecord>,
    #[serde(default)]
    pub alias_history: Vec<modelfn_registry::AliasRecord>,
    #[serde(default)]
    pub provisioned: Vec<crate::ProvisionedStatus>,
}

impl ControlPlane {
    /// Changes a function's scaling settings at run time: `patch`'s fields replace the
    /// stored ones (all of them with `replace`); the manifest's apply where neither sets one.
    pub async fn configure(
        &self,
        name: &str,
        patch: ScalingConfig,
        replace: bool,
    ) -> Result<FunctionInfo, ControlError> {
        let _guard = self.config_writes.lock().await;
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
        self.reconcile().await?;
        tracing::info!(function = %name, "scaling configured");
        Ok(self.info(rec))
    }

    pub(crate) fn info(&self, rec: FunctionRecord) -> FunctionInfo {
        let manifest = Manifest::from_toml(&rec.manifest).ok();
        FunctionInfo {
            not_served: self.not_served(&rec.name),
            stats: self.scheduler.stats(&rec.name),
            scaling: self.scheduler.scaling(&rec.name),
            url_auth: self.url(&rec.name).map(|(auth, _)| auth),
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

    /// [`ControlPlane::describe`] with the function's aliases, their history and its
    /// provisioned concurrency.
    pub async fn detail(&self, name: &str) -> Result<FunctionDetail, ControlError> {
        let function = self.describe(name).await?;
        let aliases = self.aliases(name).await?;
        Ok(FunctionDetail {
            function,
            aliases: aliases.aliases,
            alias_history: aliases.history,
            provisioned: self.provisioned(name).await?,
        })
    }

    /// Deletes a function: it stops serving at once; requests in flight finish.
    pub async fn delete(&self, name: &str) -> Result<(), ControlError> {
        let existed = self.meta.delete(name).await?;
        self.delete_keys_named(&format!("{FUNCTION_KEY_PREFIX}{name}"))
            .await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::NotFound(name.to_string()))
        }
    }
}
