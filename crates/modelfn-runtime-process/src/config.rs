//! How function processes run on this server: [`ProcessConfig`], found by looking at the
//! machine (the interpreter, the sandbox, the cgroups).

use crate::cgroup::Cgroups;
use crate::host;
use crate::sandbox::{Sandbox, UidRange};
use modelfn_core::{BoxFuture, FunctionCaller, LogSink};
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
        let mut python = host::which(&wanted).unwrap_or_else(|| PathBuf::from(&wanted));
        if root && !host::usable_by_others(&python) {
            // An interpreter under a private home (pyenv in /root) cannot run as a
            // function's uid.
            if let Some(p) = ["/usr/bin/python3", "/usr/local/bin/python3"]
                .iter()
                .map(PathBuf::from)
                .find(|p| host::usable_by_others(p))
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
        let extra = host::install_prefix(&python).into_iter().collect();
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
