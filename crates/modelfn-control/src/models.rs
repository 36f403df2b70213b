//! The model store: named models with revisions by digest. A function names one in its
//! manifest (`[model] file = "store:digits"` follows the current revision,
//! `"store:digits@3"` pins one). Putting a revision, or rolling back, first starts every
//! served version that follows the model with the new file and sends it the version's
//! test event; only when all pass does the current revision move, and then the
//! reconciler swaps those versions to new instances (calls running finish on the old).

use crate::{ControlError, ControlPlane};
use bytes::Bytes;
use modelfn_core::{FunctionSpec, Invocation, InvokeError, Manifest, StoredModel};
use modelfn_registry::{ModelHead, ModelRecord};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A model's revisions and which one is current.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub current: Option<ModelHead>,
    pub revisions: Vec<ModelRecord>,
    /// Functions whose latest version follows the current revision.
    pub followers: Vec<String>,
}

/// What a put or a rollback did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMoved {
    pub model: ModelRecord,
    /// False when that revision was already current (nothing changed).
    pub changed: bool,
    /// Function versions checked with it (`name:version`), now serving it.
    pub switched: Vec<String>,
}

/// The error a version that fails its start or its test event gives.
pub(crate) fn init_failed(what: &str, e: InvokeError) -> ControlError {
    let why = if let InvokeError::InitFailed(f) = &e {
        f.to_string()
    } else {
        e.to_string()
    };
    ControlError::InitFailed(format!("{what}{why}"))
}

impl ControlPlane {
    /// The model-store revision a manifest names, on this node's disk; `None` when it
    /// names none.
    pub(crate) async fn stored_model(
        &self,
        manifest: &Manifest,
    ) -> Result<Option<StoredModel>, ControlError> {
        let Some(r) = manifest.model.as_ref().and_then(|m| m.store_ref()) else {
            return Ok(None);
        };
        let rec = self
            .meta
            .get_model(&r.name, r.revision)
            .await?
            .ok_or_else(|| {
                ControlError::InvalidManifest(match r.revision {
                    Some(v) => format!(
                        "model '{}' has no revision {v} in the model store (modelfn model list {} shows them)",
                        r.name, r.name
                    ),
                    None => format!(
                        "model '{}' is not in the model store: put it first (modelfn model put {} FILE)",
                        r.name, r.name
                    ),
                })
            })?;
        Ok(Some(StoredModel {
            path: self.code.file(&rec.sha256).await?,
            name: rec.name,
            revision: rec.revision,
            sha256: rec.sha256,
        }))
    }

    /// Starts one instance of `spec` and sends it its test event (`[model] test_event`),
    /// if it has one; answers how long the start took.
    pub(crate) async fn check_starts(
        &self,
        spec: Arc<FunctionSpec>,
        what: &str,
    ) -> Result<std::time::Duration, ControlError> {
        let event = match spec
            .manifest
            .model
            .as_ref()
            .and_then(|m| m.test_event.as_ref())
        {
            Some(file) => {
                let body = tokio::fs::read(spec.code_dir.join(file))
                    .await
                    .map_err(|e| {
                        ControlError::InvalidPackage(format!(
                            "model.test_event = {file:?} does not read: {e}"
                        ))
                    })?;
                let ct = if file.ends_with(".csv") {
                    "text/csv"
                } else {
                    "application/json"
                };
                Some(Invocation::new("test-event", Bytes::from(body), Some(ct)))
            }
            None => None,
        };
        self.scheduler
            .validate(spec, event)
            .await
            .map_err(|e| init_failed(what, e))
    }

    /// Every served function version that follows `model`'s current revision, as it
    /// would run with `with`.
    async fn followers(
        &self,
        model: &str,
        with: &StoredModel,
    ) -> Result<Vec<FunctionSpec>, ControlError> {
        let mut out = Vec::new();
        for name in self.scheduler.names() {
            let mut key = None;
            for v in self.scheduler.installed_versions(&name) {
                let Some(rec) = self.meta.get_version(&name, v).await? else {
                    continue;
                };
                let Ok(manifest) = Manifest::from_toml(&rec.manifest) else {
                    continue;
                };
                let follows = manifest
                    .model
                    .as_ref()
                    .and_then(|m| m.store_ref())
                    .is_some_and(|r| r.name == model && r.revision.is_none());
                if !follows {
                    continue;
                }
                if key.is_none() {
                    key = Some(self.function_key(&name).await?);
                }
                let credentials = key.clone().unwrap_or_default();
                let mut spec = self.spec_of(&rec, credentials).await?;
                spec.model = Some(with.clone());
                out.push(spec);
            }
        }
        Ok(out)
    }

    /// Starts every follower of `with.name` with `with` and sends each its test event;
    /// answers them as `name:version`.
    async fn check_followers(&self, with: &StoredModel) -> Result<Vec<String>, ControlError> {
        let mut checked = Vec::new();
        for spec in self.followers(&with.name, with).await? {
            let who = format!("{}:{}", spec.manifest.name, spec.version);
            let what = format!("{who} with model '{}' {}: ", with.name, &with.sha256[..12]);
            self.check_starts(Arc::new(spec), &what).await?;
            checked.push(who);
        }
        Ok(checked)
    }

    /// Makes a checked revision current; served when answered.
    async fn make_current(
        &self,
        rec: ModelRecord,
        switched: Vec<String>,
        by: &str,
    ) -> Result<ModelMoved, ControlError> {
        self.meta
            .set_model_head(&rec.name, rec.revision, by)
            .await?;
        self.reconcile().await?;
        tracing::info!(model = %rec.name, revision = rec.revision, ?switched, "model revision is current");
        Ok(ModelMoved {
            model: rec,
            changed: true,
            switched,
        })
    }

    async fn stored(&self, rec: &ModelRecord) -> Result<StoredModel, ControlError> {
        Ok(StoredModel {
            path: self.code.file(&rec.sha256).await?,
            name: rec.name.clone(),
            revision: rec.revision,
            sha256: rec.sha256.clone(),
        })
    }

    /// Stores a new revision of a model and makes it current (see the module docs); a
    /// file identical to the current revision changes nothing.
    pub async fn put_model(
        &self,
        name: &str,
        data: Bytes,
        description: &str,
        by: &str,
    ) -> Result<ModelMoved, ControlError> {
        let name = modelfn_core::FunctionName::parse(name)
            .map_err(|e| {
                ControlError::InvalidRequest(format!("model name {name:?}: {}", e.reason))
            })?
            .to_string();
        if data.is_empty() {
            return Err(ControlError::InvalidRequest(
                "the model file is empty".into(),
            ));
        }
        let _one = self.model_writes.lock().await;
        let size = data.len() as u64;
        let sha = self.code.add_file(data).await?;
        if let Some(current) = self.meta.get_model(&name, None).await? {
            if current.sha256 == sha {
                return Ok(ModelMoved {
                    model: current,
                    changed: false,
                    switched: Vec::new(),
                });
            }
        }
        // Checked before it is recorded: a file that fails leaves no revision behind.
        let with = StoredModel {
            path: self.code.file(&sha).await?,
            name: name.clone(),
            revision: 0,
            sha256: sha.clone(),
        };
        let switched = self.check_followers(&with).await?;
        let rec = self
            .meta
            .add_model_revision(&name, &sha, size, description, by)
            .await?;
        self.make_current(rec, switched, by).await
    }

    /// Makes an earlier revision current again: `to`, or the one before the current.
    pub async fn rollback_model(
        &self,
        name: &str,
        to: Option<u64>,
        by: &str,
    ) -> Result<ModelMoved, ControlError> {
        let _one = self.model_writes.lock().await;
        let current = self.meta.get_model(name, None).await?.ok_or_else(|| {
            ControlError::Missing(format!("model '{name}' is not in the model store"))
        })?;
        let target = match to {
            Some(r) => r,
            None => self
                .meta
                .list_model_revisions(name)
                .await?
                .iter()
                .map(|r| r.revision)
                .filter(|r| *r < current.revision)
                .max()
                .ok_or_else(|| {
                    ControlError::InvalidRequest(format!(
                        "model '{name}' has no revision before {}",
                        current.revision
                    ))
                })?,
        };
        let rec = self
            .meta
            .get_model(name, Some(target))
            .await?
            .ok_or_else(|| {
                ControlError::Missing(format!("model '{name}' has no revision {target}"))
            })?;
        if rec.revision == current.revision {
            return Ok(ModelMoved {
                model: rec,
                changed: false,
                switched: Vec::new(),
            });
        }
        let switched = self.check_followers(&self.stored(&rec).await?).await?;
        self.make_current(rec, switched, by).await
    }

    /// Every model with its revisions, or one.
    pub async fn models(&self, only: Option<&str>) -> Result<Vec<ModelInfo>, ControlError> {
        let heads = self.meta.list_model_heads().await?;
        let mut out = Vec::new();
        for head in heads
            .into_iter()
            .filter(|h| only.is_none_or(|o| o == h.name))
        {
            let mut followers = Vec::new();
            for f in self.meta.list().await? {
                let follows = Manifest::from_toml(&f.manifest).is_ok_and(|m| {
                    m.model
                        .and_then(|m| m.store_ref())
                        .is_some_and(|r| r.name == head.name && r.revision.is_none())
                });
                if follows {
                    followers.push(f.name);
                }
            }
            out.push(ModelInfo {
                name: head.name.clone(),
                revisions: self.meta.list_model_revisions(&head.name).await?,
                current: Some(head),
                followers,
            });
        }
        if let Some(name) = only {
            if out.is_empty() {
                return Err(ControlError::Missing(format!(
                    "model '{name}' is not in the model store"
                )));
            }
        }
        Ok(out)
    }
}
