//! Building a layer on this machine: `pip install --target <tmp>/python -r requirements.txt`,
//! with pip's own progress output, into a directory that is removed afterwards.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// A built layer directory: private (0700, a random name, made with `O_EXCL`, so no
/// other local user can plant files or links in it), removed on drop.
pub struct BuiltLayer {
    dir: tempfile::TempDir,
}

impl BuiltLayer {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn build_with_pip(python: &str, requirements: &Path) -> Result<BuiltLayer> {
    if !requirements.is_file() {
        bail!("{} does not exist", requirements.display());
    }
    let dir = tempfile::Builder::new()
        .prefix("modelfn-layer-")
        .tempdir()
        .context("creating a private directory for the layer")?;
    let layer = BuiltLayer { dir };
    let target = layer.path().join("python");
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    eprintln!(
        "building the layer: {python} -m pip install --target {} -r {}",
        target.display(),
        requirements.display()
    );
    let status = std::process::Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-compile",
            "--progress-bar",
            "on",
            "--target",
        ])
        .arg(&target)
        .arg("-r")
        .arg(requirements)
        .status()
        .with_context(|| format!("running {python} -m pip"))?;
    if !status.success() {
        bail!(
            "pip could not install {} ({status})",
            requirements.display()
        );
    }
    Ok(layer)
}
