//! The `Runtime` of function processes: prepares the work directory and starts
//! [`ProcessInstance`]s with the server's [`ProcessConfig`], forked from the version's
//! snap-start template when it has one.

use crate::config::ProcessConfig;
use crate::instance::ProcessInstance;
use crate::template::{Snap, Templates};
use modelfn_core::{BoxFuture, FunctionSpec, Instance, InvokeError, Runtime};
use std::sync::Arc;

/// Starts function processes.
pub struct ProcessRuntime {
    cfg: Arc<ProcessConfig>,
    templates: Arc<Templates>,
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
        for (name, text) in crate::PYTHON_CLIENT {
            let file = client.join(name);
            std::fs::write(&file, text)?;
            chmod(&file, 0o644)?;
        }
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
        let templates = Arc::new(Templates::default());
        // Idle templates go even when no instance starts for a while.
        let weak = Arc::downgrade(&templates);
        let _ = std::thread::Builder::new()
            .name("modelfn-templates".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(30));
                match weak.upgrade() {
                    Some(t) => t.sweep(),
                    None => return,
                }
            });
        Ok(ProcessRuntime {
            cfg: Arc::new(cfg),
            templates,
        })
    }

    pub fn config(&self) -> &ProcessConfig {
        &self.cfg
    }

    /// The snap-start templates alive now.
    pub fn templates(&self) -> usize {
        self.templates.count()
    }

    async fn start_instance(
        &self,
        spec: Arc<FunctionSpec>,
    ) -> Result<ProcessInstance, InvokeError> {
        // A version's template comes from its own first start: a deploy's check (version
        // 0, not yet recorded) initializes in place.
        if spec.version > 0 && spec.manifest.snap_start_enabled() {
            match self.templates.get(&spec, &self.cfg).await? {
                Snap::Template(template, fresh) => {
                    let cfg = self.cfg.clone();
                    match crate::restore::start(template, !fresh, spec.clone(), cfg).await {
                        Err(InvokeError::Internal(why)) => {
                            // The template's trouble is not the caller's: start afresh.
                            tracing::warn!(function = %spec.manifest.name, %why, "snap start failed; starting without the template");
                        }
                        other => return other,
                    }
                }
                Snap::Refused(Some(launched)) => {
                    return ProcessInstance::launched(*launched, spec.manifest.memory_mb).await
                }
                Snap::Refused(None) => {}
            }
        }
        ProcessInstance::start(spec, self.cfg.clone()).await
    }
}

impl Runtime for ProcessRuntime {
    fn start(
        &self,
        spec: Arc<FunctionSpec>,
    ) -> BoxFuture<'_, Result<Arc<dyn Instance>, InvokeError>> {
        Box::pin(async move {
            let inst = self.start_instance(spec).await?;
            Ok(Arc::new(inst) as Arc<dyn Instance>)
        })
    }
}
