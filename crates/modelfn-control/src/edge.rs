//! The edge: function URLs, APIs and usage plans, and the admission of keyed requests.

use crate::plans::{Admission, UsagePlan};
use crate::{ControlError, ControlPlane};
use modelfn_core::{FunctionRef, Qualifier};
use modelfn_registry::{ApiRecord, DocRecord, UrlAuth, UrlRecord};
use std::collections::BTreeMap;

impl ControlPlane {
    /// Stores an API definition (checked by the gateway, which compiles it).
    pub async fn save_api(&self, name: &str, definition: &str) -> Result<(), ControlError> {
        self.meta
            .put_api(&ApiRecord {
                name: name.to_string(),
                definition: definition.to_string(),
            })
            .await?;
        self.reconcile().await?;
        Ok(())
    }

    pub async fn delete_api(&self, name: &str) -> Result<(), ControlError> {
        let existed = self.meta.delete_api(name).await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "API '{name}' does not exist"
            )))
        }
    }

    /// Gives a function a URL (or changes its auth).
    /// Gives a function its URL, calling `$LATEST` or the version or alias `qualifier`
    /// names (which must exist).
    pub async fn create_url(
        &self,
        function: &str,
        auth: UrlAuth,
        qualifier: Option<&str>,
    ) -> Result<(), ControlError> {
        self.describe(function).await?;
        let qualifier = match qualifier.map(Qualifier::parse) {
            None | Some(Qualifier::Latest) => None,
            Some(Qualifier::Version(v)) => {
                if self.meta.get_version(function, v).await?.is_none() {
                    return Err(ControlError::InvalidRequest(format!(
                        "function '{function}' has no version {v}"
                    )));
                }
                Some(v.to_string())
            }
            Some(Qualifier::Alias(a)) => {
                let aliases = self.meta.list_aliases(function).await?;
                if !aliases.iter().any(|x| x.name == a) {
                    return Err(ControlError::InvalidRequest(format!(
                        "function '{function}' has no alias '{a}' (modelfn alias list {function} shows them)"
                    )));
                }
                Some(a)
            }
        };
        self.meta
            .put_url(&UrlRecord {
                function: function.to_string(),
                auth,
                qualifier,
            })
            .await?;
        self.reconcile().await?;
        Ok(())
    }

    pub async fn delete_url(&self, function: &str) -> Result<(), ControlError> {
        let existed = self.meta.delete_url(function).await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "function '{function}' has no URL"
            )))
        }
    }

    /// A function's URL, if it has one: its auth and what it calls.
    pub fn url(&self, function: &str) -> Option<(UrlAuth, FunctionRef)> {
        self.urls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
            .map(|u| (u.auth, FunctionRef::new(function, u.qualifier.as_deref())))
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
        // As on API Gateway, a key works only where a usage plan holding it applies.
        let plan = self
            .plans
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|p| p.targets.iter().any(|t| t == target) && p.keys.contains(&key))
            .cloned();
        let Some(plan) = plan else {
            return Ok(Admission::Forbidden(format!(
                "this key is not in a usage plan of {target}: add it to one (modelfn plans create NAME --rate R --burst B --target {target} --key ID)"
            )));
        };
        let quota = plan.quota.filter(|_| self.meta.shared());
        let Some(quota) = quota else {
            return Ok(self.meter().admit(&plan, &key));
        };
        // A cluster's quota: this node's rate first, then one increment in the shared store.
        let rate = self.meter().admit_rate(&plan, &key);
        if rate != Admission::Allowed {
            return Ok(rate);
        }
        let (period, day) = crate::plans::period_of(&plan);
        if !self
            .quotas
            .take(&self.meta, &plan.name, &key, &period, quota)
            .await?
        {
            return Ok(crate::plans::quota_used_up(&plan, quota));
        }
        self.meter().record(&key, &day);
        Ok(Admission::Allowed)
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, crate::plans::Meter> {
        self.meter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates or replaces a usage plan.
    pub async fn save_plan(&self, plan: UsagePlan) -> Result<UsagePlan, ControlError> {
        plan.validate().map_err(ControlError::InvalidRequest)?;
        let json =
            serde_json::to_string(&plan).map_err(|e| ControlError::Storage(e.to_string()))?;
        self.meta
            .put_plan(&DocRecord {
                name: plan.name.clone(),
                definition: json,
            })
            .await?;
        self.reconcile().await?;
        Ok(plan)
    }

    pub fn plans(&self) -> Vec<UsagePlan> {
        self.plans.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn delete_plan(&self, name: &str) -> Result<(), ControlError> {
        let existed = self.meta.delete_plan(name).await?;
        self.reconcile().await?;
        if existed {
            Ok(())
        } else {
            Err(ControlError::Missing(format!(
                "usage plan '{name}' does not exist"
            )))
        }
    }

    /// Requests per day made with a key (since the server started).
    pub fn key_usage(&self, id: &str) -> BTreeMap<String, u64> {
        self.meter().usage(id)
    }
}
