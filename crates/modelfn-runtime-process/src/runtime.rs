//! The `Runtime` of function processes: prepares the work directory and starts
//! [`ProcessInstance`]s with the server's [`ProcessConfig`].

use crate::config::ProcessConfig;
use crate::instance::ProcessInstance;
use modelfn_core::{BoxFuture, FunctionSpec, Instance, InvokeError, Runtime};
use std::sync::Arc;

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
