//! Building a layer on this machine: `pip install --target <tmp>/python -r requirements.txt`
//! into a directory that is removed afterwards. pip's output is folded into one line
//! (redrawn with pip's latest on a terminal), and shown whole when pip fails or with
//! `--verbose`.

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

pub fn build_with_pip(python: &str, requirements: &Path, verbose: bool) -> Result<BuiltLayer> {
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
    let what = format!(
        "{python} -m pip install --target {} -r {}",
        target.display(),
        requirements.display()
    );
    let mut pip = std::process::Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-compile",
        "--progress-bar",
        if verbose { "on" } else { "off" },
        "--target",
    ])
    .arg(&target)
    .arg("-r")
    .arg(requirements);
    let started = std::time::Instant::now();
    if verbose {
        eprintln!("building the layer: {what}");
        let status = pip
            .status()
            .with_context(|| format!("running {python} -m pip"))?;
        if !status.success() {
            bail!(
                "pip could not install {} ({status})",
                requirements.display()
            );
        }
        return Ok(layer);
    }
    let mut folded = fold(pip, requirements).with_context(|| format!("running {python} -m pip"))?;
    if !folded.ok {
        eprintln!("{what} said:");
        for l in &folded.tail {
            eprintln!("  {l}");
        }
        bail!("pip could not install {}", requirements.display());
    }
    folded.line.finish(&format!(
        "built the layer from {}: {} in {:.0} s",
        requirements.display(),
        folded
            .installed
            .as_deref()
            .unwrap_or("nothing new installed"),
        started.elapsed().as_secs_f64()
    ));
    Ok(layer)
}

/// What pip said, folded.
pub(crate) struct Folded {
    pub ok: bool,
    /// pip's last lines (up to [`TAIL`]), to show when it fails.
    pub tail: std::collections::VecDeque<String>,
    /// `N packages (a, b, …)` from pip's `Successfully installed` line.
    pub installed: Option<String>,
    /// The line redrawn meanwhile, for the closing one.
    pub line: crate::progress::Line,
}

const TAIL: usize = 60;

/// Runs `pip` with its output read line by line: the latest shown on one redrawn line,
/// the last [`TAIL`] kept.
pub(crate) fn fold(mut pip: std::process::Command, requirements: &Path) -> std::io::Result<Folded> {
    use std::io::BufRead;
    let mut child = pip
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            // Lines are cut at 4 KB: a child's output is bounded before it is kept.
            for line in std::io::BufReader::new(r)
                .split(b'\n')
                .map_while(Result::ok)
            {
                let cut = &line[..line.len().min(4096)];
                if tx
                    .send(String::from_utf8_lossy(cut).trim_end().to_string())
                    .is_err()
                {
                    return;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut line = crate::progress::Line::new();
    let mut tail = std::collections::VecDeque::with_capacity(TAIL);
    let mut installed = None;
    for l in rx {
        if let Some(names) = l.strip_prefix("Successfully installed ") {
            let names: Vec<&str> = names.split_whitespace().collect();
            let shown: Vec<&str> = names.iter().take(6).copied().collect();
            let more = if names.len() > 6 { ", …" } else { "" };
            let n = names.len();
            let plural = if n == 1 { "" } else { "s" };
            installed = Some(format!("{n} package{plural} ({}{more})", shown.join(", ")));
        }
        if !l.trim().is_empty() {
            line.show(&format!(
                "building the layer from {}: {}",
                requirements.display(),
                l.trim()
            ));
        }
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(l);
    }
    for r in readers {
        let _ = r.join();
    }
    let ok = child.wait()?.success();
    if !ok {
        line.finish("");
    }
    Ok(Folded {
        ok,
        tail,
        installed,
        line,
    })
}
