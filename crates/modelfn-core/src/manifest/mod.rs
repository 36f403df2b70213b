//! The `modelfn.toml` manifest: what a function is, how it runs, and its limits.
//!
//! Unknown fields are rejected with a message naming them (a typo must never be
//! silently ignored), and every value is checked once here, at deploy time.

use crate::name::FunctionName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod checks;
use checks::{check_env_name, first_duplicate, one_line, valid_python_handler};
pub use checks::{check_relative_path, parse_layer_ref, RESERVED_ENV};

/// The file name a function package carries at its root.
pub const MANIFEST_FILE: &str = "modelfn.toml";

/// Lambda's defaults and bounds for memory (MB) and timeout (ms).
pub const DEFAULT_MEMORY_MB: u32 = 128;
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;
pub const MEMORY_MB_RANGE: (u32, u32) = (128, 10240);
pub const TIMEOUT_MS_RANGE: (u64, u64) = (1, 900_000);
/// `/tmp` of a code function in MB, as Lambda's ephemeral storage (default 512).
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;
pub const EPHEMERAL_MB_RANGE: (u32, u32) = (64, 10240);

/// A parsed and validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The function's name (the deploy command may override it).
    pub name: FunctionName,
    /// How the function runs.
    pub runtime: RuntimeKind,
    /// Free text shown by `describe`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Memory size in MB, as on Lambda (default 128).
    #[serde(default = "default_memory")]
    pub memory_mb: u32,
    /// Per-invocation timeout in milliseconds, as on Lambda (default 3000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// The model, for `runtime = "onnx"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// `module.function` for `python3` (`lambda_function.lambda_handler`); passed as
    /// `_HANDLER` to `provided` runtimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Which Runtime API client runs a `python3` handler (default: modelfn's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_client: Option<RuntimeClient>,
    /// The function's own environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Layers, in order: `"name"` (the latest version) or `"name:version"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// Concurrency, provisioned instances, keep-alive and batching.
    #[serde(default, skip_serializing_if = "is_default_scaling")]
    pub scaling: crate::ScalingConfig,
    /// Asynchronous invocations: attempts, age, success and failure destinations, and
    /// the bytes that may wait.
    #[serde(
        default,
        rename = "async",
        skip_serializing_if = "crate::AsyncConfig::is_default"
    )]
    pub async_config: crate::AsyncConfig,
    /// Stream sources: event-source mappings from a broker's stream to the function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<crate::StreamSource>,
    /// Object-store triggers: the bucket events that invoke the function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<crate::ObjectTrigger>,
    /// Size of a code function's `/tmp` in MB (default 512, as Lambda; 64 to 10240).
    #[serde(default = "default_ephemeral")]
    pub ephemeral_storage_mb: u32,
    /// What a code function's sandbox may reach: `"none"` (default: only modelfn, at
    /// `AWS_ENDPOINT_URL`) or `"host"` (the host's network).
    #[serde(default, skip_serializing_if = "NetworkMode::is_none")]
    pub network: NetworkMode,
    /// What the function may call through modelfn, as an execution role would allow:
    /// nothing unless granted.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
    /// Who may call the function on the native, OIP and KServe doors, beyond what the
    /// server requires of every function.
    #[serde(default, skip_serializing_if = "Access::is_default")]
    pub access: Access,
    /// Snap start: new instances fork from an initialized template of the version
    /// (python3 with modelfn's client; on unless `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap_start: Option<bool>,
    /// A saved event (a JSON file in the package) the template runs once before it is
    /// kept, so that lazy imports and caches are already in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap_start_prime: Option<String>,
}

/// How a door checks its callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoorAuth {
    /// Anyone who can connect.
    #[default]
    None,
    /// An API key of a modelfn access key, as `x-api-key`.
    Key,
    /// The admin token, as `Authorization: Bearer`.
    Token,
}

/// A function's own access rules (`[access]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// The native invoke API, OIP and KServe: `"key"` to require an API key even where
    /// the server does not.
    #[serde(default)]
    pub native: DoorAuth,
}

impl Access {
    fn is_default(&self) -> bool {
        *self == Access::default()
    }
}

/// The calls a function may make to modelfn (deny by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Functions it may invoke, by name; `"*"` grants every function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoke: Vec<String>,
    /// Buckets whose objects it may read, write, list and delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
}

impl Permissions {
    fn is_empty(&self) -> bool {
        self.invoke.is_empty() && self.buckets.is_empty()
    }

    /// Whether the function may use the objects of `bucket`.
    pub fn may_use_bucket(&self, bucket: &str) -> bool {
        self.buckets.iter().any(|b| b == bucket)
    }

    /// Whether the function may invoke `target`.
    pub fn may_invoke(&self, target: &str) -> bool {
        self.invoke.iter().any(|g| g == "*" || g == target)
    }
}

/// A function calling modelfn from inside its sandbox: who it is and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCaller {
    pub function: String,
    pub permissions: Permissions,
}

/// The network a code function's sandbox sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A network namespace of its own, with loopback only.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

impl NetworkMode {
    fn is_none(&self) -> bool {
        *self == NetworkMode::None
    }
}

fn default_ephemeral() -> u32 {
    DEFAULT_EPHEMERAL_MB
}

fn is_default_scaling(s: &crate::ScalingConfig) -> bool {
    *s == crate::ScalingConfig::default()
}

/// The Runtime API client inside a `python3` function process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeClient {
    /// The small stdlib-only client modelfn ships.
    Modelfn,
    /// The official `awslambdaric` package (it must be in a layer or installed).
    Awslambdaric,
}

/// The runtimes this build can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// An ONNX model served natively by modelfn.
    Onnx,
    /// A Python `lambda_handler(event, context)`, through the Lambda Runtime API.
    Python3,
    /// An executable `bootstrap` in any language, through the Lambda Runtime API.
    Provided,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Onnx => "onnx",
            RuntimeKind::Python3 => "python3",
            RuntimeKind::Provided => "provided",
        }
    }
}

/// An ONNX model and the shape of its requests and answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The model file, relative to the package root; or a model-store model,
    /// `store:NAME` (its current revision, followed as it moves) or `store:NAME@REV`.
    pub file: String,
    /// Input names in the order of the model's feature columns (ONNX functions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Class names by class index; empty for regressors or to answer the model's own labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The output holding the predicted label or value (default: the model's first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_output: Option<String>,
    /// The output holding class probabilities (default: the model's second output, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability_output: Option<String>,
    /// A file in the package holding a test event: a new model-store revision must
    /// answer it without error before the function switches to it (a deploy sends it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_event: Option<String>,
    /// What the model was converted from (`runtime = "sklearn"` deploys): the original
    /// file, its SHA-256 and the converter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ModelSource>,
}

/// The file a deployed ONNX model was converted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSource {
    pub file: String,
    pub sha256: String,
    pub converter: String,
}

/// A reference into the model store: `store:NAME` or `store:NAME@REVISION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRef {
    pub name: String,
    /// `None`: the current revision, followed when it moves.
    pub revision: Option<u64>,
}

impl StoreRef {
    /// `None` when `file` is not a store reference; an error when it is one, badly written.
    pub fn parse(file: &str) -> Option<Result<StoreRef, String>> {
        let rest = file.strip_prefix("store:")?;
        let (name, revision) = match rest.split_once('@') {
            Some((n, r)) => match r.parse::<u64>() {
                Ok(r) if r > 0 => (n, Some(r)),
                _ => {
                    return Some(Err(format!(
                        "model.file = {file:?}: the revision after '@' is a number from 1"
                    )))
                }
            },
            None => (rest, None),
        };
        Some(
            FunctionName::parse(name)
                .map(|n| StoreRef {
                    name: n.to_string(),
                    revision,
                })
                .map_err(|e| format!("model.file = {file:?}: in the model name, {}", e.reason)),
        )
    }
}

fn default_memory() -> u32 {
    DEFAULT_MEMORY_MB
}
fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("{MANIFEST_FILE}: {0}")]
    Parse(String),
    #[error("{MANIFEST_FILE}: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parses and validates a manifest from TOML text.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Parse(one_line(&e.to_string())))?;
        m.validate()?;
        Ok(m)
    }

    /// Whether new instances fork from a snap-start template.
    pub fn snap_start_enabled(&self) -> bool {
        self.runtime == RuntimeKind::Python3
            && self.runtime_client != Some(RuntimeClient::Awslambdaric)
            && self.snap_start != Some(false)
    }

    /// Writes the manifest back as TOML (what the registry stores).
    pub fn to_toml(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks every value against its bounds.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        let (lo, hi) = MEMORY_MB_RANGE;
        if !(lo..=hi).contains(&self.memory_mb) {
            return invalid(format!(
                "memory_mb = {} is out of range: use {lo} to {hi}",
                self.memory_mb
            ));
        }
        let (lo, hi) = TIMEOUT_MS_RANGE;
        if !(lo..=hi).contains(&self.timeout_ms) {
            return invalid(format!(
                "timeout_ms = {} is out of range: use {lo} to {hi}",
                self.timeout_ms
            ));
        }
        let (lo, hi) = EPHEMERAL_MB_RANGE;
        if !(lo..=hi).contains(&self.ephemeral_storage_mb) {
            return invalid(format!(
                "ephemeral_storage_mb = {} is out of range: use {lo} to {hi}",
                self.ephemeral_storage_mb
            ));
        }
        self.scaling
            .validate()
            .map_err(|e| ManifestError::Invalid(format!("[scaling] {e}")))?;
        self.async_config
            .validate(self.name.as_str())
            .map_err(|e| ManifestError::Invalid(format!("[async] {e}")))?;
        for (i, source) in self.streams.iter().enumerate() {
            source.validate().map_err(|e| {
                ManifestError::Invalid(format!("[[streams]] number {}: {e}", i + 1))
            })?;
        }
        for (i, t) in self.objects.iter().enumerate() {
            t.validate().map_err(|e| {
                ManifestError::Invalid(format!("[[objects]] number {}: {e}", i + 1))
            })?;
        }
        for bucket in &self.permissions.buckets {
            crate::objects::check_bucket(bucket)
                .map_err(|e| ManifestError::Invalid(format!("[permissions] buckets: {e}")))?;
        }
        for key in self.environment.keys() {
            check_env_name(key).map_err(ManifestError::Invalid)?;
        }
        for layer in &self.layers {
            parse_layer_ref(layer).map_err(ManifestError::Invalid)?;
        }
        for target in &self.permissions.invoke {
            if target != "*" {
                FunctionName::parse(target).map_err(|e| {
                    ManifestError::Invalid(format!(
                        "[permissions] invoke names {target:?}: {} (or use \"*\" for every function)",
                        e.reason
                    ))
                })?;
            }
        }
        checks::check_snap_start(self).map_err(ManifestError::Invalid)?;
        let rt = self.runtime.as_str();
        match self.runtime {
            RuntimeKind::Onnx => {
                if self.handler.is_some() || self.runtime_client.is_some() {
                    return invalid("handler and runtime_client are for the python3 and provided runtimes, not onnx".into());
                }
                match &self.model {
                    None => invalid("runtime \"onnx\" needs a [model] table naming the model file and its inputs".into()),
                    Some(model) => model.validate(),
                }
            }
            RuntimeKind::Python3 | RuntimeKind::Provided => {
                if let Some(m) = &self.model {
                    m.validate_for_code(rt)?;
                }
                if self.runtime == RuntimeKind::Provided && self.runtime_client.is_some() {
                    return invalid("runtime_client is for the python3 runtime; a provided runtime brings its own client in bootstrap".into());
                }
                match (&self.handler, self.runtime) {
                    (None, RuntimeKind::Python3) => invalid(
                        "runtime \"python3\" needs handler = \"module.function\" (for example \"lambda_function.lambda_handler\")".into(),
                    ),
                    (Some(h), RuntimeKind::Python3) if !valid_python_handler(h) => invalid(format!(
                        "handler = {h:?} is not \"module.function\" (for example \"lambda_function.lambda_handler\")"
                    )),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl ModelSpec {
    /// The model-store model this names, if any.
    pub fn store_ref(&self) -> Option<StoreRef> {
        StoreRef::parse(&self.file).and_then(Result::ok)
    }

    fn validate_common(&self) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        match StoreRef::parse(&self.file) {
            Some(Err(e)) => return invalid(e),
            Some(Ok(_)) => {}
            None => {
                if let Err(reason) = check_relative_path(&self.file) {
                    return invalid(format!("model.file = {:?}: {reason}", self.file));
                }
            }
        }
        if let Some(t) = &self.test_event {
            if let Err(reason) = check_relative_path(t) {
                return invalid(format!("model.test_event = {t:?}: {reason}"));
            }
        }
        Ok(())
    }

    /// A code function's `[model]` only names a model-store model (and a test event);
    /// the function reads it at `MODELFN_MODEL_PATH`.
    fn validate_for_code(&self, rt: &str) -> Result<(), ManifestError> {
        self.validate_common()?;
        let only_file = self.inputs.is_empty()
            && self.labels.is_empty()
            && self.label_output.is_none()
            && self.probability_output.is_none();
        if self.store_ref().is_none() || !only_file {
            return Err(ManifestError::Invalid(format!(
                "a [model] table in a runtime \"{rt}\" function names a model-store model (file = \"store:NAME\") and optionally test_event; inputs, labels and outputs are for runtime \"onnx\""
            )));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |m: String| Err(ManifestError::Invalid(m));
        self.validate_common()?;
        if self.inputs.is_empty() {
            return invalid("model.inputs must name at least one input".into());
        }
        if let Some(bad) = self.inputs.iter().find(|s| s.trim().is_empty()) {
            return invalid(format!("model.inputs has an empty name ({bad:?})"));
        }
        if let Some(dup) = first_duplicate(&self.inputs) {
            return invalid(format!("model.inputs names '{dup}' twice"));
        }
        if let Some(dup) = first_duplicate(&self.labels) {
            return invalid(format!("model.labels names '{dup}' twice"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
