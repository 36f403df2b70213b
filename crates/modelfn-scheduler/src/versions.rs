//! A function's versions as served: a slot per installed version, which one is the
//! latest, and aliases that route over versions by weight or by a caller's sticky key.
//! Resolving a [`FunctionRef`] happens here, once per call, for every door.

use crate::invoke::{Resolved, Unresolved};
use crate::pool::Slot;
use crate::shadow::{Mirror, ShadowRoute, ShadowTally};
use crate::Scheduler;
use modelfn_core::{FunctionRef, FunctionSpec, InvokeError, Qualifier};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// Where a sticky alias reads a caller's routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// A request header (`header:x-user-id`).
    Header(String),
    /// A top-level field of the JSON event (`json:user_id`).
    JsonField(String),
}

impl Sticky {
    /// `header:NAME` or `json:FIELD`.
    pub fn parse(s: &str) -> Result<Sticky, String> {
        match s.split_once(':') {
            Some(("header", h)) if !h.is_empty() => Ok(Sticky::Header(h.to_ascii_lowercase())),
            Some(("json", f)) if !f.is_empty() => Ok(Sticky::JsonField(f.to_string())),
            _ => Err(format!(
                "sticky routing reads 'header:NAME' or 'json:FIELD', not {s:?}"
            )),
        }
    }
}

/// An alias as served: `(version, weight)` pairs and, optionally, a sticky key and a
/// shadow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRoute {
    pub name: String,
    pub routing: Vec<(u64, u32)>,
    pub sticky: Option<Sticky>,
    pub shadow: Option<ShadowRoute>,
}

impl AliasRoute {
    /// The version a call goes to: drawn by weight, or fixed by the caller's key (one key
    /// always lands on one version while the weights stay).
    pub fn pick(&self, key: Option<&str>) -> Option<u64> {
        let total: u64 = self.routing.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return self.routing.first().map(|(v, _)| *v);
        }
        let mut x = match key {
            Some(k) => {
                // SipHash with fixed keys: the same key picks the same version on every
                // node and after restarts.
                let mut h = DefaultHasher::new();
                k.hash(&mut h);
                h.finish() % total
            }
            None => rand::random_range(0..total),
        };
        for (v, w) in &self.routing {
            let w = u64::from(*w);
            if x < w {
                return Some(*v);
            }
            x -= w;
        }
        self.routing.last().map(|(v, _)| *v)
    }
}

/// What serves one function.
#[derive(Default)]
pub(crate) struct Served {
    pub latest: Option<Arc<Slot>>,
    /// Every installed version, the latest included.
    pub versions: HashMap<u64, Arc<Slot>>,
    pub aliases: HashMap<String, Arc<AliasRoute>>,
    /// Each shadowed alias's tally, kept while its challenger stays the same.
    pub tallies: HashMap<String, Arc<ShadowTally>>,
}

impl Scheduler {
    /// Replaces a function's aliases.
    pub fn set_aliases(&self, name: &str, aliases: Vec<AliasRoute>) {
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        if let Some(served) = map.get_mut(name) {
            let runtime = served.latest.as_ref().map(|s| s.spec.manifest.runtime);
            let mut tallies = HashMap::new();
            for (a, route) in aliases.iter().filter_map(|a| Some((a, a.shadow?))) {
                let kept = served.tallies.remove(&a.name).filter(|t| t.route == route);
                let tally = match (kept, runtime) {
                    (Some(t), _) => t,
                    (None, Some(rt)) => Arc::new(ShadowTally::new(route, rt)),
                    (None, None) => continue,
                };
                tallies.insert(a.name.clone(), tally);
            }
            served.tallies = tallies;
            served.aliases = aliases
                .into_iter()
                .map(|a| (a.name.clone(), Arc::new(a)))
                .collect();
        }
    }

    /// A function's aliases as served.
    pub fn aliases(&self, name: &str) -> Vec<AliasRoute> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<AliasRoute> = map
            .get(name)
            .map(|s| s.aliases.values().map(|a| (**a).clone()).collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The versions of `name` installed (the latest included), ascending.
    pub fn installed_versions(&self, name: &str) -> Vec<u64> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<u64> = map
            .get(name)
            .map(|s| s.versions.keys().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// The spec of an installed version of `name`.
    pub fn installed_spec(&self, name: &str, version: u64) -> Option<Arc<FunctionSpec>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(name)?
            .versions
            .get(&version)
            .map(|s| s.spec.clone())
    }

    /// Stops serving the versions of `name` that `keep` refuses (never the latest); calls
    /// running on them finish.
    pub fn retain_versions(&self, name: &str, keep: &dyn Fn(u64) -> bool) {
        let mut map = self.functions.write().unwrap_or_else(|p| p.into_inner());
        if let Some(served) = map.get_mut(name) {
            let latest = served.latest.as_ref().map(|s| s.spec.version);
            served
                .versions
                .retain(|v, _| Some(*v) == latest || keep(*v));
        }
    }

    /// Every installed version of `name`.
    pub(crate) fn version_slots(&self, name: &str) -> Vec<Arc<Slot>> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .map(|s| s.versions.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One installed version of `name`.
    pub(crate) fn version_slot(&self, name: &str, version: u64) -> Result<Arc<Slot>, InvokeError> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .and_then(|s| s.versions.get(&version))
            .cloned()
            .ok_or_else(|| InvokeError::FunctionNotFound(format!("{name}:{version}")))
    }

    /// Whether `slot` is still installed (a replaced or removed one stops provisioning).
    pub(crate) fn is_installed(&self, slot: &Arc<Slot>) -> bool {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        map.get(slot.spec.manifest.name.as_str())
            .and_then(|s| s.versions.get(&slot.spec.version))
            .is_some_and(|s| Arc::ptr_eq(s, slot))
    }

    /// The version a reference names, resolved once: every door resolves here, so a
    /// qualifier means the same at each of them, and the version checked is the one
    /// [`Scheduler::invoke_resolved`] runs. A sticky alias asks `key_of` for the caller's
    /// key.
    pub fn resolve_ref_with(
        &self,
        r: &FunctionRef,
        key_of: &dyn Fn(&Sticky) -> Option<String>,
    ) -> Result<Resolved, Unresolved> {
        let map = self.functions.read().unwrap_or_else(|p| p.into_inner());
        let served = map.get(&r.name).ok_or(Unresolved::NoFunction)?;
        let latest = served.latest.as_ref().ok_or(Unresolved::NoFunction)?;
        let serving = latest.spec.version;
        let mut shadow = None;
        let mut alias_named = None;
        let version = match &r.qualifier {
            Qualifier::Latest => return Ok(Resolved::new(latest.clone())),
            Qualifier::Version(v) => *v,
            Qualifier::Alias(a) => {
                let alias = served.aliases.get(a).ok_or(Unresolved::NoAlias)?;
                alias_named = Some(Arc::from(a.as_str()));
                let key = alias.sticky.as_ref().and_then(key_of);
                if let Some(s) = alias.shadow {
                    if rand::random_range(0..100) < s.percent {
                        shadow = served
                            .versions
                            .get(&s.version)
                            .zip(served.tallies.get(a))
                            .map(|(slot, tally)| Mirror {
                                slot: slot.clone(),
                                tally: tally.clone(),
                            });
                    }
                }
                alias.pick(key.as_deref()).ok_or(Unresolved::NoAlias)?
            }
        };
        served
            .versions
            .get(&version)
            .map(|s| Resolved {
                slot: s.clone(),
                shadow,
                alias: alias_named,
            })
            .ok_or(Unresolved::NoVersion { serving })
    }

    /// [`Scheduler::resolve_ref_with`] for callers without a routing key.
    pub fn resolve_ref(&self, r: &FunctionRef) -> Result<Resolved, Unresolved> {
        self.resolve_ref_with(r, &|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_keys_pick_versions() {
        let a = AliasRoute {
            name: "prod".into(),
            routing: vec![(1, 60), (2, 30), (3, 10)],
            sticky: None,
            shadow: None,
        };
        let mut seen = HashMap::new();
        for _ in 0..20_000 {
            *seen.entry(a.pick(None).unwrap()).or_insert(0) += 1;
        }
        for (v, w) in &a.routing {
            let share = f64::from(seen[v]) / 200.0;
            assert!((share - f64::from(*w)).abs() < 3.0, "version {v}: {share}%");
        }
        for k in ["alice", "bob", "carol"] {
            let first = a.pick(Some(k));
            assert!((0..50).all(|_| a.pick(Some(k)) == first), "{k}");
        }
        assert_eq!(
            Sticky::parse("header:X-User"),
            Ok(Sticky::Header("x-user".into()))
        );
        assert_eq!(
            Sticky::parse("json:user"),
            Ok(Sticky::JsonField("user".into()))
        );
        assert!(Sticky::parse("cookie:x").is_err());
    }
}
