//! Provisioned concurrency on a version or an alias, as Lambda's
//! `PutProvisionedConcurrencyConfig`: set, read and deleted; an alias's count split over
//! its versions by weight; and warming: before traffic moves (a new setting, an alias
//! moved or reweighted), every version whose share rises gets its instances started and
//! waited for, so the first calls after the move are warm.

use crate::{ControlError, ControlPlane};
use modelfn_core::Qualifier;
use modelfn_registry::{AliasRecord, ProvisionedRecord};
use modelfn_scheduler::Scheduler;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Most provisioned instances one qualifier asks for (Lambda's default account limit is
/// 1000 concurrent executions).
pub const MAX_PROVISIONED: u32 = 1000;

/// How long a change waits for a version to warm before traffic moves anyway (the
/// instances still missing keep starting; its status says `IN_PROGRESS`).
pub const WARM_WITHIN: Duration = Duration::from_secs(120);

/// One qualifier's provisioned concurrency, as `GetProvisionedConcurrencyConfig` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionedStatus {
    pub qualifier: String,
    pub requested: u32,
    /// Instances up for it now (for an alias, over its versions' shares).
    pub allocated: u32,
    /// `READY`, `IN_PROGRESS`, or `FAILED` (with the reason).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// `count` split over an alias's `(version, weight)` routing by the largest remainder: the
/// shares add up to `count`, each within one of its exact weight.
pub fn split(count: u32, routing: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let total: u64 = routing.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return routing
            .first()
            .map(|(v, _)| (*v, count))
            .into_iter()
            .collect();
    }
    let exact: Vec<(u64, u64, u64)> = routing
        .iter()
        .map(|(v, w)| {
            let x = u64::from(count) * u64::from(*w);
            (*v, x / total, x % total)
        })
        .collect();
    let mut left = u64::from(count) - exact.iter().map(|(_, q, _)| q).sum::<u64>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|a, b| exact[*b].2.cmp(&exact[*a].2).then(a.cmp(b)));
    let mut out: Vec<(u64, u32)> = exact
        .iter()
        .map(|(v, q, _)| (*v, u32::try_from(*q).unwrap_or(u32::MAX)))
        .collect();
    for i in order {
        if left == 0 {
            break;
        }
        out[i].1 += 1;
        left -= 1;
    }
    out
}

/// Provisioned instances per version that `configs` ask for, over `aliases`' routing.
pub(crate) fn desired(
    configs: &[ProvisionedRecord],
    aliases: &[AliasRecord],
) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for c in configs {
        let shares = match Qualifier::parse(&c.qualifier) {
            Qualifier::Version(v) => vec![(v, c.count)],
            Qualifier::Alias(a) => aliases
                .iter()
                .find(|x| x.name == a)
                .map(|x| split(c.count, &x.routing))
                .unwrap_or_default(),
            Qualifier::Latest => Vec::new(),
        };
        for (v, n) in shares {
            *out.entry(v).or_insert(0) += n as usize;
        }
    }
    out
}

/// Floors raised while versions warm; dropped when the change is recorded or given up.
pub(crate) struct WarmFloor {
    scheduler: Arc<Scheduler>,
    function: String,
    versions: Vec<u64>,
}

impl Drop for WarmFloor {
    fn drop(&mut self) {
        self.scheduler.release_warm(&self.function, &self.versions);
    }
}

impl ControlPlane {
    /// Starts, and waits for, the provisioned instances of every version `next` asks
    /// for (beyond the function's own setting), before the change that asks for them is
    /// recorded.
    /// Each must fit what the version may run at once; a start that fails refuses the
    /// change. Keep the answer until the change is recorded and reconciled.
    pub(crate) async fn warm_for(
        &self,
        function: &str,
        next: &BTreeMap<u64, usize>,
    ) -> Result<WarmFloor, ControlError> {
        self.check_fits(function, next).await?;
        let mut floor = WarmFloor {
            scheduler: self.scheduler.clone(),
            function: function.to_string(),
            versions: Vec::new(),
        };
        for (&version, &extra) in next.iter().filter(|(_, n)| **n > 0) {
            floor.versions.push(version);
            let t0 = std::time::Instant::now();
            let up = self
                .scheduler
                .warm(function, version, extra, WARM_WITHIN)
                .await
                .map_err(|e| {
                    crate::models::init_failed(&format!("version {version} did not warm: "), e)
                })?;
            tracing::info!(
                function,
                version,
                up,
                extra,
                took_ms = t0.elapsed().as_millis() as u64,
                "warmed before traffic moves"
            );
        }
        Ok(floor)
    }

    /// Warms a just-recorded latest version of a served function with provisioned
    /// concurrency of its own (`modelfn config --provisioned`) before calls move to it:
    /// the reconciler leaves the function as it is meanwhile. A version that does not warm
    /// within [`WARM_WITHIN`], or fails to, is served anyway (the deploy already started
    /// it once); the failure is logged. Keep the answer until the caller's reconcile pass
    /// has made the version the latest.
    pub(crate) async fn warm_new_latest(
        &self,
        rec: &modelfn_registry::FunctionRecord,
    ) -> Option<WarmFloor> {
        let function = rec.name.as_str();
        let want = self.scaling_of(function, rec).await.ok()?.provisioned();
        if want == 0 || self.scheduler.spec(function).is_none() {
            return None;
        }
        self.set_warming(function, true);
        let floor = WarmFloor {
            scheduler: self.scheduler.clone(),
            function: function.to_string(),
            versions: vec![rec.version],
        };
        let warmed = async {
            self.install_for_warming(function, rec.version).await?;
            self.scheduler
                .warm(function, rec.version, want, WARM_WITHIN)
                .await
                .map_err(|e| ControlError::InitFailed(e.to_string()))
        }
        .await;
        self.set_warming(function, false);
        match warmed {
            Ok(up) => tracing::info!(
                function,
                version = rec.version,
                up,
                want,
                "new latest warmed before calls move"
            ),
            Err(e) => {
                tracing::warn!(function, version = rec.version, error = %e, "the new latest did not warm; serving it anyway")
            }
        }
        Some(floor)
    }

    fn set_warming(&self, function: &str, on: bool) {
        let mut w = self.warming.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            w.insert(function.to_string());
        } else {
            w.remove(function);
        }
    }

    pub(crate) fn is_warming(&self, function: &str) -> bool {
        self.warming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(function)
    }

    /// Installs every version `next` asks provisioned instances of, and checks that they
    /// fit what each may run at once.
    async fn check_fits(
        &self,
        function: &str,
        next: &BTreeMap<u64, usize>,
    ) -> Result<(), ControlError> {
        for (&version, &extra) in next.iter().filter(|(_, n)| **n > 0) {
            self.install_for_warming(function, version).await?;
            self.scheduler
                .check_provisioned_extra(function, version, extra)
                .map_err(|e| ControlError::InvalidRequest(format!("version {version}: {e}")))?;
        }
        Ok(())
    }

    /// Installs a recorded version beside the served ones if it is not (an old version an
    /// alias is about to name), so that it can warm.
    async fn install_for_warming(&self, function: &str, version: u64) -> Result<(), ControlError> {
        if self.scheduler.installed_spec(function, version).is_some() {
            return Ok(());
        }
        let rec = self
            .meta
            .get_version(function, version)
            .await?
            .ok_or_else(|| {
                ControlError::InvalidRequest(format!(
                    "function '{function}' has no version {version}"
                ))
            })?;
        let key = self.function_key(function).await?;
        let spec = self.spec_of(&rec, key).await?;
        let scaling = self.scaling_of(function, &rec).await?;
        self.scheduler
            .install_version(Arc::new(spec), scaling)
            .map_err(|e| ControlError::Storage(e.to_string()))
    }

    /// Sets provisioned concurrency on a version or an alias; its instances start at
    /// once. With `wait`, answers once they are up, one failed (`FAILED`, with the
    /// reason), or after [`WARM_WITHIN`] (`IN_PROGRESS`); without, at once (as Lambda's
    /// API does). Traffic does not move, so nothing waits before it is recorded.
    pub async fn set_provisioned(
        &self,
        function: &str,
        qualifier: &str,
        count: u32,
        by: &str,
        wait: bool,
    ) -> Result<ProvisionedStatus, ControlError> {
        self.describe(function).await?;
        if !(1..=MAX_PROVISIONED).contains(&count) {
            return Err(ControlError::InvalidRequest(format!(
                "provisioned concurrency {count} is out of range: 1 to {MAX_PROVISIONED} (delete the setting to remove it)"
            )));
        }
        let aliases = self.meta.list_aliases(function).await?;
        self.check_qualifier(function, qualifier, &aliases).await?;
        let record = ProvisionedRecord {
            function: function.to_string(),
            qualifier: qualifier.to_string(),
            count,
            updated_at_ms: modelfn_registry::now_ms(),
            updated_by: by.to_string(),
        };
        let mut configs = self.meta.list_provisioned(function).await?;
        configs.retain(|c| c.qualifier != qualifier);
        configs.push(record.clone());
        self.check_fits(function, &desired(&configs, &aliases))
            .await?;
        self.meta.put_provisioned(&record).await?;
        self.reconcile().await?;
        tracing::info!(function, qualifier, count, "provisioned concurrency set");
        let until = tokio::time::Instant::now() + WARM_WITHIN;
        loop {
            let status = self.provisioned_status(function, qualifier).await?;
            if !wait || status.status != "IN_PROGRESS" || tokio::time::Instant::now() >= until {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `$LATEST` is refused (as on Lambda); a version or an alias must exist.
    async fn check_qualifier(
        &self,
        function: &str,
        qualifier: &str,
        aliases: &[AliasRecord],
    ) -> Result<(), ControlError> {
        match Qualifier::parse(qualifier) {
            Qualifier::Latest => Err(ControlError::InvalidRequest(format!(
                "provisioned concurrency is set on a version or an alias, not on $LATEST (the latest's own is `modelfn config {function} --provisioned N`)"
            ))),
            Qualifier::Version(v) => match self.meta.get_version(function, v).await? {
                Some(_) => Ok(()),
                None => Err(ControlError::Missing(format!(
                    "function '{function}' has no version {v}"
                ))),
            },
            Qualifier::Alias(a) if aliases.iter().any(|x| x.name == a) => Ok(()),
            Qualifier::Alias(a) => Err(ControlError::Missing(format!(
                "function '{function}' has no alias '{a}'"
            ))),
        }
    }

    /// Every provisioned concurrency setting of a function, with how much is up.
    pub async fn provisioned(
        &self,
        function: &str,
    ) -> Result<Vec<ProvisionedStatus>, ControlError> {
        self.describe(function).await?;
        let configs = self.meta.list_provisioned(function).await?;
        let aliases = self.meta.list_aliases(function).await?;
        Ok(configs
            .iter()
            .map(|c| self.status_of(c, &aliases))
            .collect())
    }

    /// One qualifier's setting (a `Missing` error when it has none).
    pub async fn provisioned_status(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<ProvisionedStatus, ControlError> {
        self.provisioned(function)
            .await?
            .into_iter()
            .find(|s| s.qualifier == qualifier)
            .ok_or_else(|| {
                ControlError::Missing(format!(
                    "function '{function}' has no provisioned concurrency on '{qualifier}'"
                ))
            })
    }

    /// Removes a qualifier's setting; its instances become on-demand ones, stopped after
    /// their keep-alive.
    pub async fn delete_provisioned(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(), ControlError> {
        self.describe(function).await?;
        let existed = self.meta.delete_provisioned(function, qualifier).await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "function '{function}' has no provisioned concurrency on '{qualifier}'"
            )))
        }
    }

    fn status_of(&self, c: &ProvisionedRecord, aliases: &[AliasRecord]) -> ProvisionedStatus {
        let served = self.scheduler.provisioned(&c.function);
        let shares = desired(std::slice::from_ref(c), aliases);
        let mut allocated = 0usize;
        let mut failed = None;
        for (v, share) in &shares {
            match served.iter().find(|s| s.version == *v) {
                Some(s) => {
                    allocated += s.live.min(*share);
                    if s.live < *share && failed.is_none() {
                        failed = s.failed.clone();
                    }
                }
                None => failed = Some(format!("version {v} is not served on this node")),
            }
        }
        let allocated = u32::try_from(allocated).unwrap_or(u32::MAX).min(c.count);
        let (status, status_reason) = match failed {
            _ if allocated >= c.count => ("READY", None),
            Some(why) => ("FAILED", Some(why)),
            None => ("IN_PROGRESS", None),
        };
        ProvisionedStatus {
            qualifier: c.qualifier.clone(),
            requested: c.count,
            allocated,
            status: status.to_string(),
            status_reason,
            updated_at_ms: c.updated_at_ms,
            updated_by: c.updated_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_count_is_split_by_weight_and_adds_up() {
        assert_eq!(split(10, &[(1, 70), (2, 30)]), [(1, 7), (2, 3)]);
        assert_eq!(split(1, &[(1, 50), (2, 50)]), [(1, 1), (2, 0)]);
        assert_eq!(
            split(5, &[(1, 60), (2, 30), (3, 10)]),
            [(1, 3), (2, 2), (3, 0)]
        );
        assert_eq!(split(3, &[(4, 100)]), [(4, 3)]);
        for n in 0..50 {
            let s = split(n, &[(1, 33), (2, 33), (3, 34)]);
            assert_eq!(s.iter().map(|(_, c)| c).sum::<u32>(), n);
        }
    }

    #[test]
    fn versions_sum_what_their_qualifiers_ask() {
        let rec = |q: &str, count| ProvisionedRecord {
            function: "f".into(),
            qualifier: q.into(),
            count,
            updated_at_ms: 0,
            updated_by: String::new(),
        };
        let alias = AliasRecord {
            function: "f".into(),
            name: "prod".into(),
            routing: vec![(1, 50), (2, 50)],
            sticky: None,
            shadow: None,
            description: String::new(),
            updated_at_ms: 0,
            updated_by: String::new(),
        };
        let d = desired(&[rec("1", 2), rec("prod", 4), rec("gone", 9)], &[alias]);
        assert_eq!(d, BTreeMap::from([(1, 4), (2, 2)]));
    }
}
