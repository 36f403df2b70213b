//! What a function process runs inside its sandbox: the command for its runtime and the
//! environment a Lambda function expects, with paths as Lambda lays them out
//! (`/var/task`, `/opt`, `/var/runtime`, `/tmp`). The environment starts empty, so
//! nothing of modelfn's own (the admin token included) reaches a function.

use crate::config::ProcessConfig;
use crate::host::is_executable;
use modelfn_core::{FunctionError, FunctionSpec, RuntimeClient, RuntimeKind};
use std::ffi::OsString;
use std::path::Path;

/// Where the Runtime API and the endpoint listen inside an isolated sandbox.
pub const SANDBOX_API_PORT: u16 = 9001;
pub const SANDBOX_ENDPOINT_PORT: u16 = 9000;

/// The instance-specific values of the environment.
pub struct Endpoints<'a> {
    /// `host:port` of the Runtime API, as the function reaches it.
    pub runtime_api: &'a str,
    /// This modelfn, as the function reaches it (`AWS_ENDPOINT_URL`).
    pub endpoint: Option<&'a str>,
    pub instance_id: &'a str,
}

const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The command line inside the sandbox.
pub fn argv(spec: &FunctionSpec, cfg: &ProcessConfig) -> Result<Vec<OsString>, FunctionError> {
    let m = &spec.manifest;
    match m.runtime {
        RuntimeKind::Python3 => {
            let handler = OsString::from(m.handler.clone().unwrap_or_default());
            let mut v = vec![cfg.python.clone().into_os_string(), "-u".into()];
            match m.runtime_client.unwrap_or(RuntimeClient::Modelfn) {
                RuntimeClient::Modelfn => v.push("/var/runtime/modelfn_runtime.py".into()),
                RuntimeClient::Awslambdaric => v.extend(["-m".into(), "awslambdaric".into()]),
            }
            v.push(handler);
            Ok(v)
        }
        RuntimeKind::Provided => {
            if !is_executable(&spec.code_dir.join("bootstrap")) {
                return Err(FunctionError::new(
                    "Runtime.InvalidEntrypoint",
                    "the package has no executable `bootstrap` at its root (runtime \"provided\" runs it)",
                ));
            }
            Ok(vec!["/var/task/bootstrap".into()])
        }
        RuntimeKind::Onnx => Err(FunctionError::new(
            "Runtime.InvalidEntrypoint",
            "ONNX functions do not run as processes",
        )),
    }
}

/// Where a model-store file is inside the sandbox: `/var/model/NAME`. Each revision is a
/// new instance, so the file an instance sees never changes under it.
pub fn model_path(model: &modelfn_core::StoredModel) -> String {
    format!("{}/{}", crate::sandbox::MODEL_DIR, model.name)
}

/// Lambda's environment for the function, inside its sandbox.
pub fn environment(
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
    opt: Option<&Path>,
    at: &Endpoints,
) -> Vec<(String, String)> {
    let m = &spec.manifest;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_string(), v));
    let has = |dir: &str| opt.is_some_and(|o| o.join(dir).is_dir());
    let path = if has("bin") {
        format!("/opt/bin:{BASE_PATH}")
    } else {
        BASE_PATH.to_string()
    };
    set("PATH", path);
    if has("lib") {
        set("LD_LIBRARY_PATH", "/opt/lib".into());
    }
    if m.runtime == RuntimeKind::Python3 {
        let mut py = vec!["/var/task".to_string()];
        py.extend(opt.map(crate::layers::python_paths).unwrap_or_default());
        set("PYTHONPATH", py.join(":"));
        set("PYTHONUNBUFFERED", "1".into());
        set("PYTHONDONTWRITEBYTECODE", "1".into());
    }
    let name = m.name.as_str();
    let version = spec.version.to_string();
    set("LANG", "C.UTF-8".into());
    set("TZ", ":UTC".into());
    set("HOME", "/tmp".into());
    set("TMPDIR", "/tmp".into());
    set("AWS_LAMBDA_RUNTIME_API", at.runtime_api.to_string());
    set("_HANDLER", m.handler.clone().unwrap_or_default());
    set("LAMBDA_TASK_ROOT", "/var/task".into());
    if let Some(model) = &spec.model {
        set("MODELFN_MODEL_PATH", model_path(model));
        set("MODELFN_MODEL_NAME", model.name.clone());
        set("MODELFN_MODEL_REVISION", model.revision.to_string());
        set("MODELFN_MODEL_SHA256", model.sha256.clone());
    }
    set("LAMBDA_RUNTIME_DIR", "/var/runtime".into());
    set("AWS_LAMBDA_FUNCTION_NAME", name.to_string());
    set("AWS_LAMBDA_FUNCTION_VERSION", version.clone());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", m.memory_mb.to_string());
    set("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"));
    set(
        "AWS_LAMBDA_LOG_STREAM_NAME",
        format!("[{version}]{}", at.instance_id),
    );
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    set("AWS_REGION", cfg.region.clone());
    set("AWS_DEFAULT_REGION", cfg.region.clone());
    if let Some(url) = at.endpoint {
        set("AWS_ENDPOINT_URL", url.to_string());
    }
    if let Some((id, secret)) = &spec.credentials {
        set("AWS_ACCESS_KEY_ID", id.clone());
        set("AWS_SECRET_ACCESS_KEY", secret.clone());
    }
    for (k, v) in &m.environment {
        set(k, v.clone());
    }
    env
}
