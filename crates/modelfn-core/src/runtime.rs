//! The seam between scheduling and execution: a `Runtime` starts `Instance`s of a
//! function version, and an `Instance` runs invocations.
//!
//! Futures are boxed `std` futures so that this crate needs no async runtime.

use crate::{Invocation, InvocationOutput, InvokeError, Manifest};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything a runtime needs to start a function version.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub manifest: Manifest,
    /// The version number this spec belongs to (1, 2, ...).
    pub version: u64,
    /// The unpacked, read-only package directory.
    pub code_dir: PathBuf,
    /// SHA-256 of the package, hex.
    pub code_sha256: String,
    /// The unpacked directories of the function's layers, in manifest order.
    pub layers: Vec<PathBuf>,
    /// Settings a running instance reads live (changed by `modelfn config`).
    pub tuning: Arc<LiveTuning>,
    /// The function's own access key (id, secret), scoped to its `[permissions]`.
    pub credentials: Option<(String, String)>,
    /// The model-store revision its `[model] file = "store:..."` resolved to.
    pub model: Option<StoredModel>,
}

/// A model-store revision as a function version uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredModel {
    pub name: String,
    pub revision: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The file on this node (named by its digest, never changed).
    pub path: PathBuf,
}

impl FunctionSpec {
    /// The model file an ONNX function loads: the store's revision, or the package's file.
    pub fn model_path(&self) -> Option<PathBuf> {
        match (&self.model, &self.manifest.model) {
            (Some(stored), _) => Some(stored.path.clone()),
            (None, Some(m)) => Some(self.code_dir.join(&m.file)),
            (None, None) => None,
        }
    }

    /// The digest of the model-store revision in use (`None` without one).
    pub fn model_sha256(&self) -> Option<&str> {
        self.model.as_ref().map(|m| m.sha256.as_str())
    }
}

/// Batching settings an instance reads on every batch, so that a change applies at once.
#[derive(Debug, Default)]
pub struct LiveTuning {
    max_batch: std::sync::atomic::AtomicUsize,
    max_delay_us: std::sync::atomic::AtomicU64,
}

impl LiveTuning {
    pub fn new(scaling: &crate::ScalingConfig) -> Arc<LiveTuning> {
        let t = Arc::new(LiveTuning::default());
        t.set(scaling);
        t
    }

    pub fn set(&self, scaling: &crate::ScalingConfig) {
        use std::sync::atomic::Ordering::Relaxed;
        self.max_batch.store(scaling.max_batch(), Relaxed);
        self.max_delay_us
            .store(scaling.max_delay().as_micros() as u64, Relaxed);
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1)
    }

    pub fn max_delay(&self) -> std::time::Duration {
        std::time::Duration::from_micros(
            self.max_delay_us.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// Something that can start instances of functions of one runtime kind.
pub trait Runtime: Send + Sync + 'static {
    /// Whether one instance serves many invocations at once (an ONNX model) or one at a
    /// time (a function process, as on Lambda).
    fn pool_kind(&self) -> crate::PoolKind {
        crate::PoolKind::Exclusive
    }

    /// Starts (initializes) one instance: the cold start.
    fn start(
        &self,
        spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>>;
}

/// A started, warm instance of a function version.
pub trait Instance: Send + Sync + 'static {
    /// Runs one invocation.
    fn invoke(
        &self,
        invocation: Invocation,
    ) -> BoxFuture<'_, Result<InvocationOutput, InvokeError>>;

    /// False once the instance cannot serve again (its process died or was killed); the
    /// scheduler then drops it and starts a fresh one.
    fn healthy(&self) -> bool {
        true
    }

    /// Whether the instance was restored from a snapshot (snap start) rather than
    /// initialized: its start is reported as `Restore Duration`.
    fn restored(&self) -> bool {
        false
    }

    /// Peak memory of the instance in MB, if known (for `REPORT` lines).
    fn max_memory_used_mb(&self) -> Option<u64> {
        None
    }
}
