//! How function processes run on this server ([`ProcessConfig`], found by looking at the
//! machine: the interpreter, the sandbox, the cgroups) and the `Runtime` that starts
//! [`ProcessInstance`]s with it.

use crate::cgroup::Cgroups;
use crate::instance::ProcessInstance;
use crate::sandbox::{Sandbox, UidRange};
use crate::spawn;
use modelfn_core::{
    BoxFuture, FunctionCaller, FunctionSpec, Instance, InvokeError, LogSink, Runtime,
};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

/// Serves modelfn's own API on a listener inside a sandbox (set by the server once its
/// router exists), so that a function's `AWS_ENDPOINT_URL` reaches this modelfn; every
/// request on it is the function's, held to its `[permissions]`.
pub type ServeFn =
    Arc<dyn Fn(tokio::net::TcpListener, FunctionCaller) -> BoxFuture<'static, ()> + Send + Sync>;

/// How function processes are run on this server.
pub struct ProcessConfig {
    pub logs: Arc<dyn LogSink>,
    /// `<data dir>/runtime`: the Python client and the merged layers.
    pub work_dir: PathBuf,
    /// The interpreter for `python3` functions.
    pub python: PathBuf,
    pub region: String,
    /// This server's URL, for `AWS_ENDPOINT_URL` of `network = "host"` functions.
    pub endpoint: Arc<OnceLock<String>>,
    /// modelfn's API for sandboxes, once the server has built it.
    pub gateway: Arc<watch::Sender<Option<ServeFn>>>,
    /// The sandbox, or why code functions cannot run here.
    pub sandbox: Result<Sandbox, String>,
    pub cgroups: Cgroups,
    /// Processes one instance may have at once (Lambda: 1024).
    pub pids_max: u32,
}

impl ProcessConfig {
    /// Looks at the machine: the Python to use, the sandbox, the cgroups.
    pub fn detect(
        logs: Arc<dyn LogSink>,
        work_dir: PathBuf,
        python: Option<String>,
        uids: UidRange,
    ) -> ProcessConfig {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let wanted = python.unwrap_or_else(|| "python3".to_string());
        let mut python = spawn::which(&wanted).unwrap_or_else(|| PathBuf::from(&wanted));
        if root && !spawn::usable_by_others(&python) {
            // An interpreter under a private home (pyenv in /root) cannot run as a
            // function's uid.
            if let Some(p) = ["/usr/bin/python3", "/usr/local/bin/python3"]
                .iter()
                .map(PathBuf::from)
                .find(|p| spawn::usable_by_others(p))
            {
                tracing::info!(
                    "{} is not usable by an unprivileged user; functions use {}",
                    python.display(),
                    p.display()
                );
                python = p;
            }
        }
        if let Ok(real) = python.canonicalize() {
            python = real;
        }
        let extra = spawn::install_prefix(&python).into_iter().collect();
        let cgroups = Cgroups::detect();
        let swept = cgroups.sweep_leaked();
        if swept > 0 {
            tracing::info!(swept, "removed cgroups left by servers no longer running");
        }
        ProcessConfig {
            logs,
            work_dir,
            python,
            region: "us-east-1".into(),
            endpoint: Arc::new(OnceLock::new()),
            gateway: Arc::new(watch::channel(None).0),
            sandbox: Sandbox::detect(uids, extra),
            cgroups,
            pids_max: 1024,
        }
    }

    pub(crate) fn client_dir(&self) -> PathBuf {
        self.work_dir.join("client")
    }
}

/// Starts function processes.
pub struct ProcessRuntime {
    cfg: Arc<ProcessConfig>,
}

fn chmod(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

impl ProcessRuntime {
    /// Prepares the work directory and writes the Python client into it.
    pub fn new(cfg: ProcessConfig) -> std::io::Result<ProcessRuntime> {
        let client = cfg.client_dir();
        std::fs::create_dir_all(&client)?;
        chmod(&cfg.work_dir, 0o700)?;
        chmod(&client, 0o755)?;
        let file = client.join("modelfn_runtime.py");
        std::fs::write(&file, crate::PYTHON_CLIENT)?;
        chmod(&file, 0o644)?;
        // Instances of earlier releases kept their temporary files here.
        let _ = std::fs::remove_dir_all(cfg.work_dir.join("instances"));
        match &cfg.sandbox {
            Ok(s) => tracing::info!(
                sandbox = %s.describe(),
                limits = %cfg.cgroups.describe(),
                python = %cfg.python.display(),
                "function processes"
            ),
            Err(why) => {
                tracing::error!("code functions cannot run: {why}");
                eprintln!("modelfn: code functions cannot run: {why}");
            }
        }
        Ok(ProcessRuntime { cfg: Arc::new(cfg) })
    }

    pub fn config(&self) -> &ProcessConfig {
        &self.cfg
    }
}

impl Runtime for ProcessRuntime {
    fn start(
        &self,
        spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let inst = ProcessInstance::start(spec, self.cfg.clone()).await?;
            Ok(Arc::new(inst) as Arc<dyn Instance>)
        })
    }
}
