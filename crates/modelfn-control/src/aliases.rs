//! Versions and aliases: a function's versions; aliases set, listed and deleted, with
//! weights that add up to 100 over versions that exist and start, an optional shadow
//! challenger and its agreement report, and the history of every move.

use crate::{ControlError, ControlPlane};
use modelfn_core::Manifest;
use modelfn_registry::{AliasRecord, ShadowTarget, VersionDeleted};
use modelfn_scheduler::ShadowReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most versions one alias routes over.
pub const MAX_ALIAS_TARGETS: usize = 10;

/// A version as `modelfn versions` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: u64,
    pub runtime: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub code_sha256: String,
    pub code_size: u64,
    pub created_at_ms: i64,
    /// Whether calls can reach it now (`NAME:VERSION`, or through an alias).
    pub serving: bool,
}

/// A function's versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versions {
    pub latest: u64,
    pub versions: Vec<VersionInfo>,
}

/// A function's aliases and the history of their moves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aliases {
    pub aliases: Vec<AliasRecord>,
    pub history: Vec<AliasRecord>,
}

/// What `PUT /v1/functions/{name}/aliases/{alias}` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSpec {
    /// Version → weight, e.g. `{"3": 90, "4": 10}`; the weights add up to 100.
    pub routing: BTreeMap<String, u32>,
    /// `header:NAME` or `json:FIELD`: one caller key always reaches one version.
    #[serde(default)]
    pub sticky: Option<String>,
    /// A challenger version that `percent` of the calls are mirrored to (answers
    /// compared, not returned).
    #[serde(default)]
    pub shadow: Option<ShadowTarget>,
    #[serde(default)]
    pub description: String,
}

fn check_alias_name(alias: &str) -> Result<(), ControlError> {
    let ok = !alias.is_empty()
        && alias.len() <= 128
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !alias.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ControlError::InvalidRequest(format!(
            "alias {alias:?}: 1 to 128 letters, digits, '-' or '_', not only digits (those name versions)"
        )))
    }
}

impl AliasSpec {
    /// `(version, weight)` pairs, checked: 1 to 10 versions, weights adding up to 100.
    fn routing(&self) -> Result<Vec<(u64, u32)>, ControlError> {
        let bad = |m: String| ControlError::InvalidRequest(m);
        if self.routing.is_empty() || self.routing.len() > MAX_ALIAS_TARGETS {
            return Err(bad(format!(
                "an alias routes to 1 to {MAX_ALIAS_TARGETS} versions, not {}",
                self.routing.len()
            )));
        }
        let mut out = Vec::new();
        for (v, w) in &self.routing {
            let version: u64 = v
                .parse()
                .map_err(|_| bad(format!("{v:?} is not a version number")))?;
            out.push((version, *w));
        }
        out.sort_unstable();
        let total: u64 = out.iter().map(|(_, w)| u64::from(*w)).sum();
        if total != 100 {
            return Err(bad(format!(
                "the weights add up to {total}; they must add up to 100"
            )));
        }
        Ok(out)
    }

    fn shadow(&self) -> Result<Option<ShadowTarget>, ControlError> {
        match self.shadow {
            Some(s) if !(1..=100).contains(&s.percent) => {
                Err(ControlError::InvalidRequest(format!(
                    "shadow percent {} is out of range: mirror 1 to 100 percent of the calls",
                    s.percent
                )))
            }
            other => Ok(other),
        }
    }
}

impl ControlPlane {
    /// A function's versions, oldest first.
    pub async fn versions(&self, function: &str) -> Result<Versions, ControlError> {
        let latest = self.describe(function).await?.version;
        let serving = self.scheduler.installed_versions(function);
        let versions = self
            .meta
            .list_versions(function)
            .await?
            .into_iter()
            .map(|v| VersionInfo {
                description: Manifest::from_toml(&v.manifest)
                    .map(|m| m.description)
                    .unwrap_or_default(),
                serving: serving.contains(&v.version),
                version: v.version,
                runtime: v.runtime,
                code_sha256: v.code_sha256,
                code_size: v.code_size,
                created_at_ms: v.created_at_ms,
            })
            .collect();
        Ok(Versions { latest, versions })
    }

    /// Creates or moves an alias. Every version it names must exist and start (each is
    /// started once here, as a deploy is), or nothing moves. With provisioned concurrency
    /// on the alias, its versions' shares are up before it moves. Served when answered.
    pub async fn set_alias(
        &self,
        function: &str,
        alias: &str,
        spec: AliasSpec,
        by: &str,
    ) -> Result<AliasRecord, ControlError> {
        check_alias_name(alias)?;
        let routing = spec.routing()?;
        let shadow = spec.shadow()?;
        if let Some(s) = &spec.sticky {
            modelfn_scheduler::Sticky::parse(s).map_err(ControlError::InvalidRequest)?;
        }
        self.describe(function).await?;
        let key = self.function_key(function).await?;
        let challenger = shadow.map(|s| s.version);
        for version in routing.iter().map(|(v, _)| *v).chain(challenger) {
            let rec = self
                .meta
                .get_version(function, version)
                .await?
                .ok_or_else(|| {
                    ControlError::InvalidRequest(format!(
                        "function '{function}' has no version {version} (modelfn versions {function} lists them)"
                    ))
                })?;
            let spec = self.spec_of(&rec, key.clone()).await?;
            self.check_starts(Arc::new(spec), &format!("version {version}: "))
                .await?;
        }
        let record = AliasRecord {
            function: function.to_string(),
            name: alias.to_string(),
            routing,
            sticky: spec.sticky,
            shadow,
            description: spec.description,
            updated_at_ms: modelfn_registry::now_ms(),
            updated_by: by.to_string(),
        };
        // With provisioned concurrency on the alias, its new versions warm first.
        let mut aliases = self.meta.list_aliases(function).await?;
        aliases.retain(|a| a.name != alias);
        aliases.push(record.clone());
        let configs = self.meta.list_provisioned(function).await?;
        let _floor = self
            .warm_for(function, &crate::provisioned::desired(&configs, &aliases))
            .await?;
        self.meta.put_alias(&record).await?;
        self.reconcile().await?;
        tracing::info!(function, alias, routing = ?record.routing, "alias moved");
        Ok(record)
    }

    /// Deletes one version: refused for the latest, and for a version an alias routes to
    /// (naming the aliases). Calls running on it finish.
    pub async fn delete_version(&self, function: &str, version: u64) -> Result<(), ControlError> {
        self.describe(function).await?;
        let outcome = self.meta.delete_version(function, version).await?;
        self.reconcile().await?;
        match outcome {
            VersionDeleted::Deleted => Ok(()),
            VersionDeleted::Missing => Err(ControlError::Missing(format!(
                "function '{function}' has no version {version}"
            ))),
            VersionDeleted::Latest => Err(ControlError::InvalidRequest(format!(
                "version {version} is the latest of '{function}': deploy a newer one first, or delete the function"
            ))),
            VersionDeleted::UsedBy(users) => {
                let (url, aliases): (Vec<String>, Vec<String>) =
                    users.into_iter().partition(|u| u == "URL");
                let mut by = Vec::new();
                if !aliases.is_empty() {
                    by.push(format!(
                        "alias{} {}",
                        if aliases.len() == 1 { "" } else { "es" },
                        aliases.join(", ")
                    ));
                }
                if !url.is_empty() {
                    by.push(format!("the URL of '{function}'"));
                }
                Err(ControlError::InvalidRequest(format!(
                    "version {version} of '{function}' is in use by {}: move {} first",
                    by.join(" and "),
                    if aliases.len() + url.len() == 1 { "it" } else { "them" },
                )))
            }
        }
    }

    /// A function's aliases and their history.
    pub async fn aliases(&self, function: &str) -> Result<Aliases, ControlError> {
        self.describe(function).await?;
        Ok(Aliases {
            aliases: self.meta.list_aliases(function).await?,
            history: self.meta.alias_history(function).await?,
        })
    }

    /// How an alias's shadow challenger compares with what it answers (on this node,
    /// since the challenger was set).
    pub async fn shadow_report(
        &self,
        function: &str,
        alias: &str,
    ) -> Result<ShadowReport, ControlError> {
        self.describe(function).await?;
        self.scheduler.shadow_report(function, alias).ok_or_else(|| {
            ControlError::Missing(format!(
                "function '{function}' has no alias '{alias}' with a shadow (set one with --shadow VERSION:PERCENT)"
            ))
        })
    }

    pub async fn delete_alias(
        &self,
        function: &str,
        alias: &str,
        by: &str,
    ) -> Result<(), ControlError> {
        let bound = self
            .meta
            .list_urls()
            .await?
            .into_iter()
            .any(|u| u.function == function && u.qualifier.as_deref() == Some(alias));
        if bound {
            return Err(ControlError::InvalidRequest(format!(
                "alias '{alias}' is what the URL of '{function}' calls: delete the URL or bind it elsewhere first"
            )));
        }
        let existed = self.meta.delete_alias(function, alias, by).await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "function '{function}' has no alias '{alias}'"
            )))
        }
    }
}
