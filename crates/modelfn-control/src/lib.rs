//! The control plane: turns an uploaded package into a serving function version, and
//! keeps the registry (what exists) and the scheduler (what serves) in step.
//!
//! A deploy is atomic: the package is unpacked, its manifest checked and an instance
//! started from it before anything is recorded; only then is the new version written and
//! swapped in. A failure at any step leaves the previous version serving.
//!
//! The control plane records desired state; it is never on the request path (every door
//! invokes through the scheduler), and it never installs anything itself: each write is
//! followed by a pass of the node's [`reconcile`]r, which converges the scheduler and the
//! edge caches to the store. One module per job: `deploy` (packages, layers), [`aliases`]
//! (versions and aliases),
//! `functions` (list, describe, configure, delete), [`keys`] (access keys, sealed by
//! [`secrets`]), `edge` (URLs, APIs, usage plans and keyed admission, with [`plans`]),
//! `events` (saved test events), [`models`] (the model store), [`provisioned`]
//! (provisioned concurrency on versions and aliases, and warming before traffic moves),
//! [`reconcile`], [`cluster`] (node membership), `quota` (a cluster's quota counts,
//! batched), `error`.

pub mod aliases;
pub mod cluster;
mod deploy;
mod edge;
mod error;
mod events;
mod functions;
pub mod keys;
pub mod models;
pub mod plans;
pub mod provisioned;
mod quota;
pub mod reconcile;
pub mod secrets;

pub use aliases::{AliasSpec, Aliases, VersionInfo, Versions};
pub use cluster::{spawn_heartbeat, ClusterStatus, NodeIdentity};
pub use deploy::{DeployOutcome, LayerInfo, Limits};
pub use error::ControlError;
pub use functions::{FunctionDetail, FunctionInfo};
pub use keys::{AccessKey, FUNCTION_KEY_PREFIX};
pub use modelfn_registry::{AliasRecord, ApiRecord, UrlAuth};
pub use models::{ModelInfo, ModelMoved};
pub use provisioned::ProvisionedStatus;
pub use reconcile::{spawn_reconciler, ApiFollower, Reconciled};

use modelfn_registry::{CodeCache, MetadataStore};
use modelfn_scheduler::Scheduler;
use plans::{Meter, UsagePlan};
use secrets::Sealer;
use std::collections::HashMap;
use std::sync::Arc;

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

/// The control plane. Share it behind an `Arc`.
pub struct ControlPlane {
    /// Usage plans, mirrored from the registry, and their counters.
    plans: std::sync::RwLock<Vec<UsagePlan>>,
    meter: std::sync::Mutex<Meter>,
    /// Quota counts in a shared store, batched per key ([`quota`]).
    quotas: quota::QuotaBatcher,
    /// Function URLs and their auth, mirrored from the registry (read on every URL call).
    urls: std::sync::RwLock<HashMap<String, modelfn_registry::UrlRecord>>,
    meta: Arc<dyn MetadataStore>,
    code: Arc<CodeCache>,
    scheduler: Arc<Scheduler>,
    limits: Limits,
    /// Serializes `configure`'s read-modify-write of a function's stored overrides.
    config_writes: tokio::sync::Mutex<()>,
    /// Serializes model-store puts and rollbacks (each checks the followers, then moves).
    model_writes: tokio::sync::Mutex<()>,
    reconcile_state: tokio::sync::Mutex<reconcile::ReconcileState>,
    /// Functions whose new latest version is warming: the reconciler leaves them as
    /// they are until it is up ([`provisioned`]).
    warming: std::sync::Mutex<std::collections::HashSet<String>>,
    api_follower: std::sync::OnceLock<Arc<dyn ApiFollower>>,
    sealer: Sealer,
    /// API keys seen valid (SHA-256 → key id), so a keyed request costs no database
    /// read; emptied when a key is deleted.
    api_keys: std::sync::RwLock<HashMap<String, String>>,
    /// This node's name, once it has recorded itself ([`cluster`]).
    node: std::sync::OnceLock<String>,
    /// Functions recorded that this node could not install, with why ([`reconcile`]).
    not_served: std::sync::RwLock<HashMap<String, String>>,
}

impl ControlPlane {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        code: Arc<CodeCache>,
        scheduler: Arc<Scheduler>,
        limits: Limits,
        sealer: Sealer,
    ) -> Self {
        ControlPlane {
            plans: std::sync::RwLock::new(Vec::new()),
            meter: std::sync::Mutex::new(Meter::default()),
            quotas: Default::default(),
            urls: std::sync::RwLock::new(HashMap::new()),
            meta,
            code,
            scheduler,
            limits,
            config_writes: tokio::sync::Mutex::new(()),
            model_writes: tokio::sync::Mutex::new(()),
            reconcile_state: Default::default(),
            warming: Default::default(),
            api_follower: std::sync::OnceLock::new(),
            sealer,
            api_keys: std::sync::RwLock::new(HashMap::new()),
            node: std::sync::OnceLock::new(),
            not_served: Default::default(),
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
}
