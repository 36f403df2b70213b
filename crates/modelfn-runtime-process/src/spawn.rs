//! Building a function process: the command for its runtime, the environment a Lambda
//! function expects (and nothing of modelfn's own: the environment starts empty, so the
//! admin token never reaches a function), its own temporary directory, an unprivileged
//! user when modelfn runs as root, a memory limit, and death with its parent.

use crate::instance::ProcessConfig;
use modelfn_core::{FunctionError, FunctionSpec, RuntimeClient, RuntimeKind};
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// What one launch needs besides the function.
pub struct Launch<'a> {
    pub api_port: u16,
    pub tmp_dir: &'a Path,
    pub instance_id: &'a str,
    pub rlimit_as: Option<u64>,
}

const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Python import paths of the layers: `<layer>/python` and any
/// `<layer>/python/lib/python3.*/site-packages` (Lambda's two layouts).
fn python_layer_paths(layers: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for layer in layers {
        let py = layer.join("python");
        if py.is_dir() {
            out.push(py.clone());
        }
        if let Ok(entries) = std::fs::read_dir(py.join("lib")) {
            let mut sites: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path().join("site-packages")))
                .filter(|p| p.is_dir())
                .collect();
            sites.sort();
            out.extend(sites);
        }
    }
    out
}

fn join(paths: impl IntoIterator<Item = PathBuf>) -> String {
    paths
        .into_iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// The process for `spec`, ready to spawn.
pub fn command(
    spec: &FunctionSpec,
    cfg: &ProcessConfig,
    launch: &Launch,
) -> Result<Command, FunctionError> {
    let m = &spec.manifest;
    let code = &spec.code_dir;
    let mut cmd = match m.runtime {
        RuntimeKind::Python3 => {
            let handler = m.handler.clone().unwrap_or_default();
            let mut c = Command::new(&cfg.python);
            match m.runtime_client.unwrap_or(RuntimeClient::Modelfn) {
                RuntimeClient::Modelfn => c.arg("-u").arg(cfg.python_client_path()).arg(&handler),
                RuntimeClient::Awslambdaric => c.args(["-u", "-m", "awslambdaric"]).arg(&handler),
            };
            c
        }
        RuntimeKind::Provided => {
            let bootstrap = code.join("bootstrap");
            if !is_executable(&bootstrap) {
                return Err(FunctionError::new(
                    "Runtime.InvalidEntrypoint",
                    "the package has no executable `bootstrap` at its root (runtime \"provided\" runs it)",
                ));
            }
            Command::new(bootstrap)
        }
        RuntimeKind::Onnx => {
            return Err(FunctionError::new(
                "Runtime.InvalidEntrypoint",
                "ONNX functions do not run as processes",
            ));
        }
    };
    cmd.current_dir(code).env_clear().kill_on_drop(true);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());

    let mut path: Vec<PathBuf> = spec
        .layers
        .iter()
        .map(|l| l.join("bin"))
        .filter(|p| p.is_dir())
        .collect();
    path.extend(std::env::split_paths(BASE_PATH));
    cmd.env("PATH", join(path));
    let libs: Vec<PathBuf> = spec
        .layers
        .iter()
        .map(|l| l.join("lib"))
        .filter(|p| p.is_dir())
        .collect();
    if !libs.is_empty() {
        cmd.env("LD_LIBRARY_PATH", join(libs));
    }
    if !spec.layers.is_empty() {
        cmd.env("MODELFN_LAYER_DIRS", join(spec.layers.iter().cloned()));
    }
    if m.runtime == RuntimeKind::Python3 {
        let mut py = vec![code.clone()];
        py.extend(python_layer_paths(&spec.layers));
        cmd.env("PYTHONPATH", join(py))
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
    }
    let name = m.name.as_str();
    let version = spec.version.to_string();
    cmd.env("LANG", "C.UTF-8")
        .env("TZ", ":UTC")
        .env("HOME", launch.tmp_dir)
        .env("TMPDIR", launch.tmp_dir)
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("127.0.0.1:{}", launch.api_port),
        )
        .env("_HANDLER", m.handler.as_deref().unwrap_or(""))
        .env("LAMBDA_TASK_ROOT", code)
        .env("LAMBDA_RUNTIME_DIR", &cfg.work_dir)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", &version)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", m.memory_mb.to_string())
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("[{version}]{}", launch.instance_id),
        )
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_REGION", &cfg.region)
        .env("AWS_DEFAULT_REGION", &cfg.region);
    if let Some(url) = cfg.endpoint.get() {
        cmd.env("AWS_ENDPOINT_URL", url);
    }
    if let Some((id, secret)) = cfg.credentials.get() {
        cmd.env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    for (k, v) in &m.environment {
        cmd.env(k, v);
    }
    if let Some((uid, gid)) = cfg.run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd.process_group(0);
    let rlimit = launch.rlimit_as;
    // SAFETY: only async-signal-safe calls (prctl, setrlimit) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(bytes) = rlimit {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(cmd)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a file can be run by users other than its owner (every directory above it
/// traversable, the file executable by others).
pub fn usable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(real) = path.canonicalize() else {
        return false;
    };
    let file_ok = std::fs::metadata(&real).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    file_ok
        && real
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// Finds a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| is_executable(p))
}
