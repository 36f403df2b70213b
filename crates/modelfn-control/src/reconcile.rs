//! The node's reconciler: converges what this node serves (the scheduler's slots) and its
//! edge caches (URL auth, usage plans, the API-key cache, compiled APIs through an
//! [`ApiFollower`]) to the desired state in the store.
//!
//! Writes never touch those directly: they record desired state (each write a numbered
//! [`Change`](modelfn_registry::Change)), then run a pass, so a deploy is served once
//! this node's reconciler has seen it. A pass reads the change log from the last
//! generation it applied; at start, or when the log has been trimmed past it, it reloads
//! everything. Another node's writes arrive by the periodic pass ([`spawn_reconciler`]).
//! Functions that fail to converge (their code cannot be fetched, say) are retried on
//! every pass.

use crate::plans::UsagePlan;
use crate::{ControlError, ControlPlane};
use modelfn_core::Manifest;
use modelfn_registry::{ApiRecord, ChangeKind, FunctionRecord};
use modelfn_scheduler::{AliasRoute, ShadowRoute, Sticky};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Changes read per query.
const PAGE: u32 = 1000;

/// How many of a function's newest versions serve (for `NAME:VERSION` calls) beside its
/// latest and every version an alias routes to; older ones answer 404 until an alias
/// names them.
pub const SERVED_VERSIONS: usize = 20;

/// Whoever keeps compiled APIs (the gateway): told the stored definitions whenever one
/// changes.
pub trait ApiFollower: Send + Sync + 'static {
    /// Replaces every compiled API with these definitions (one that does not compile is
    /// the follower's to report, and is left out).
    fn replace_all(&self, apis: Vec<ApiRecord>);
}

/// What a pass did.
#[derive(Debug, Default, Clone)]
pub struct Reconciled {
    /// The generation this node has now applied.
    pub generation: u64,
    /// Functions (re)installed, reconfigured or removed.
    pub functions: usize,
    /// Functions that could not be served, with why.
    pub failed: HashMap<String, String>,
}

/// The reconciler's memory: the generation applied and the functions to retry.
#[derive(Default)]
pub(crate) struct ReconcileState {
    generation: Option<u64>,
    retry: BTreeSet<String>,
}

#[derive(Default)]
struct Todo {
    functions: BTreeSet<String>,
    /// A model's current revision moved: every function is looked at.
    every_function: bool,
    urls: bool,
    plans: bool,
    apis: bool,
    keys: bool,
}

impl Todo {
    fn everything() -> Self {
        Todo {
            functions: BTreeSet::new(),
            every_function: true,
            urls: true,
            plans: true,
            apis: true,
            keys: true,
        }
    }
}

impl ControlPlane {
    /// Tells `follower` of every API change from now on (set before the first pass).
    pub fn follow_apis(&self, follower: Arc<dyn ApiFollower>) {
        let _ = self.api_follower.set(follower);
    }

    /// One pass: applies every change since the last one (everything, the first time).
    pub async fn reconcile(&self) -> Result<Reconciled, ControlError> {
        let mut state = self.reconcile_state.lock().await;
        let mut todo = Todo::default();
        let mut full = false;
        let generation = match state.generation {
            None => {
                full = true;
                self.meta.generation().await?
            }
            Some(mut seen) => loop {
                let page = self.meta.changes_since(seen, PAGE).await?;
                if !page.complete {
                    full = true;
                    break self.meta.generation().await?;
                }
                for c in &page.changes {
                    match c.kind {
                        ChangeKind::Function | ChangeKind::Config | ChangeKind::Alias => {
                            todo.functions.insert(c.name.clone());
                            // A deleted function's URL goes with it.
                            todo.urls |= c.kind == ChangeKind::Function;
                        }
                        ChangeKind::Url => todo.urls = true,
                        ChangeKind::Plan => todo.plans = true,
                        ChangeKind::Api => todo.apis = true,
                        ChangeKind::Key => todo.keys = true,
                        ChangeKind::Model => todo.every_function = true,
                    }
                }
                seen = page.generation;
                if page.changes.len() < PAGE as usize {
                    break seen;
                }
            },
        };
        if full || todo.every_function {
            // Read after the generation: anything later is applied again next pass.
            if full {
                todo = Todo::everything();
            }
            todo.functions = self
                .meta
                .list()
                .await?
                .into_iter()
                .map(|r| r.name)
                .collect();
            todo.functions.extend(self.scheduler.names());
        }
        let retrying = std::mem::take(&mut state.retry);
        todo.functions.extend(retrying.iter().cloned());
        let mut out = Reconciled {
            generation,
            ..Reconciled::default()
        };
        for name in &todo.functions {
            if self.is_warming(name) {
                // Its new latest version is warming; it moves once that is done.
                state.retry.insert(name.clone());
                continue;
            }
            let converged = self.converge_function(name).await;
            self.set_not_served(name, converged.as_ref().err().map(|e| e.to_string()));
            match converged {
                Ok(true) => out.functions += 1,
                Ok(false) => {}
                Err(e) => {
                    if retrying.contains(name) {
                        tracing::debug!(function = %name, error = %e, "still cannot serve function");
                    } else {
                        tracing::error!(function = %name, error = %e, "could not serve function; retrying every pass");
                    }
                    state.retry.insert(name.clone());
                    out.failed.insert(name.clone(), e.to_string());
                }
            }
        }
        self.converge_edge(&todo).await?;
        state.generation = Some(generation);
        Ok(out)
    }

    /// Puts every recorded function back into service (at start-up). Answers how many
    /// serve; a function that cannot be restored is logged, left recorded and retried.
    pub async fn restore(&self) -> Result<usize, ControlError> {
        self.reconcile().await?;
        Ok(self.scheduler.names().len())
    }

    /// Makes the scheduler serve `name` as the store says (its latest version, its
    /// newest [`SERVED_VERSIONS`], every alias target and every version with provisioned
    /// concurrency; its aliases; provisioned instances per version); answers whether
    /// anything changed.
    async fn converge_function(&self, name: &str) -> Result<bool, ControlError> {
        let Some(rec) = self.meta.get(name).await? else {
            return Ok(self.scheduler.remove(name));
        };
        let overrides = self.overrides(name).await?;
        let scaling_of = |rec: &FunctionRecord| {
            Manifest::from_toml(&rec.manifest)
                .map(|m| m.scaling.overlay(&overrides))
                .map_err(|e| ControlError::InvalidManifest(e.to_string()))
        };
        let scaling = scaling_of(&rec)?;
        let model_of = |rec: &FunctionRecord| {
            let manifest = Manifest::from_toml(&rec.manifest)
                .map_err(|e| ControlError::InvalidManifest(e.to_string()));
            async move { self.stored_model(&manifest?).await }
        };
        // Installed with this code and this model-store revision: nothing to start.
        let up_to_date = |spec: &modelfn_core::FunctionSpec,
                          model: &Option<modelfn_core::StoredModel>| {
            spec.model_sha256() == model.as_ref().map(|m| m.sha256.as_str())
        };
        let mut credentials = None;
        let mut changed = false;
        let model = model_of(&rec).await?;
        match self.scheduler.spec(name) {
            Some(serving) if serving.version == rec.version && up_to_date(&serving, &model) => {
                if self.scheduler.scaling(name).as_ref() != Some(&scaling) {
                    self.scheduler
                        .configure(name, scaling)
                        .map_err(|e| ControlError::Storage(e.to_string()))?;
                    changed = true;
                }
            }
            Some(_) | None => {
                let key = self.function_key(name).await?;
                let spec = self.spec_of(&rec, key.clone()).await?;
                credentials = Some(key);
                self.scheduler
                    .install(Arc::new(spec), scaling)
                    .map_err(|e| ControlError::Storage(e.to_string()))?;
                changed = true;
            }
        }
        // Older versions: the newest few, and whatever an alias routes or mirrors to.
        let aliases = self.meta.list_aliases(name).await?;
        let versions = self.meta.list_versions(name).await?;
        let mut keep: BTreeSet<u64> = versions
            .iter()
            .rev()
            .take(SERVED_VERSIONS)
            .map(|v| v.version)
            .collect();
        keep.extend(aliases.iter().flat_map(|a| {
            let challenger = a.shadow.map(|s| s.version);
            a.routing.iter().map(|(v, _)| *v).chain(challenger)
        }));
        // And whatever has provisioned concurrency of its own.
        let provisioned = self.meta.list_provisioned(name).await?;
        let wanted = crate::provisioned::desired(&provisioned, &aliases);
        keep.extend(wanted.keys());
        for v in versions.iter().filter(|v| keep.contains(&v.version)) {
            if let Some(installed) = self.scheduler.installed_spec(name, v.version) {
                if up_to_date(&installed, &model_of(v).await?) {
                    continue;
                }
            }
            let key = match &credentials {
                Some(k) => k.clone(),
                None => {
                    let k = self.function_key(name).await?;
                    credentials = Some(k.clone());
                    k
                }
            };
            let spec = self.spec_of(v, key).await?;
            self.scheduler
                .install_version(Arc::new(spec), scaling_of(v)?)
                .map_err(|e| ControlError::Storage(e.to_string()))?;
            changed = true;
        }
        self.scheduler.retain_versions(name, &|v| keep.contains(&v));
        let routes: Vec<AliasRoute> = aliases
            .into_iter()
            .map(|a| AliasRoute {
                sticky: a.sticky.as_deref().and_then(|s| Sticky::parse(s).ok()),
                name: a.name,
                routing: a.routing,
                shadow: a.shadow.map(|s| ShadowRoute {
                    version: s.version,
                    percent: s.percent,
                }),
            })
            .collect();
        if routes != self.scheduler.aliases(name) {
            self.scheduler.set_aliases(name, routes);
            changed = true;
        }
        self.scheduler.set_provisioned(name, &wanted);
        Ok(changed)
    }

    async fn converge_edge(&self, todo: &Todo) -> Result<(), ControlError> {
        if todo.urls {
            let urls = self.meta.list_urls().await?;
            *self.urls.write().unwrap_or_else(|p| p.into_inner()) =
                urls.into_iter().map(|u| (u.function.clone(), u)).collect();
        }
        if todo.plans {
            let mut plans = Vec::new();
            for doc in self.meta.list_plans().await? {
                match serde_json::from_str::<UsagePlan>(&doc.definition) {
                    Ok(mut p) => {
                        p.name = doc.name;
                        plans.push(p);
                    }
                    Err(e) => {
                        tracing::error!(plan = %doc.name, error = %e, "a stored usage plan does not read")
                    }
                }
            }
            *self.plans.write().unwrap_or_else(|p| p.into_inner()) = plans;
        }
        if todo.keys {
            self.forget_api_keys();
        }
        if todo.apis {
            if let Some(follower) = self.api_follower.get() {
                follower.replace_all(self.meta.list_apis().await?);
            }
        }
        Ok(())
    }
}

impl ControlPlane {
    /// Why this node does not serve `function`, when its last pass failed to install it.
    pub fn not_served(&self, function: &str) -> Option<String> {
        self.not_served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(function)
            .cloned()
    }

    fn set_not_served(&self, function: &str, why: Option<String>) {
        let mut map = self.not_served.write().unwrap_or_else(|p| p.into_inner());
        match why {
            Some(why) => {
                map.insert(function.to_string(), why);
            }
            None => {
                map.remove(function);
            }
        }
    }

    /// The generation of desired state this node has applied (0 before its first pass).
    pub async fn applied_generation(&self) -> u64 {
        self.reconcile_state.lock().await.generation.unwrap_or(0)
    }
}

/// Runs a pass every `every`, and at once whenever `wake` is notified (PostgreSQL's change
/// notifications), abort the handle to stop it: how writes made on other nodes, or
/// functions that failed to converge, reach this one.
pub fn spawn_reconciler(
    control: Arc<ControlPlane>,
    every: Duration,
    wake: Option<Arc<tokio::sync::Notify>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            match &wake {
                Some(w) => {
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = w.notified() => {}
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            if let Err(e) = control.reconcile().await {
                tracing::warn!(error = %e, "reconcile pass failed; retrying");
            }
        }
    })
}
