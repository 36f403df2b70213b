//! Finding ONNX Runtime: `libonnxruntime.so` is opened at run time (`ort`'s `load-dynamic`).
//!
//! Looked for, in order: `ORT_DYLIB_PATH` (or the configured path); beside the `modelfn`
//! binary; `<data dir>/lib/`; modelfn's cache (`$XDG_CACHE_HOME/modelfn` or
//! `~/.cache/modelfn`); an installed Python `onnxruntime`. When none is there, the pinned
//! wheel is installed with pip into the cache (once, saying so). With no pip either, one
//! error names the fix.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The ONNX Runtime version modelfn is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";
const LIB_NAME: &str = "libonnxruntime.so.1.31.1";

/// Where to look for the library and whether pip may fetch it.
#[derive(Debug, Clone, Default)]
pub struct LibraryConfig {
    /// An explicit path (from `ORT_DYLIB_PATH` or the config file): used alone when set.
    pub path: Option<PathBuf>,
    /// The server's data directory (`<data dir>/lib/` is searched).
    pub data_dir: Option<PathBuf>,
    /// Whether a missing library may be installed with pip.
    pub allow_pip: bool,
    /// Where pip installs it (default: [`cache_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// The Python used to find or install `onnxruntime` (default: `$MODELFN_PYTHON` or `python3`).
    pub python: Option<String>,
}

impl LibraryConfig {
    fn cache(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(cache_dir)
    }

    fn python(&self) -> String {
        self.python
            .clone()
            .or_else(|| std::env::var("MODELFN_PYTHON").ok())
            .unwrap_or_else(|| "python3".to_string())
    }
}

/// A started ONNX Runtime environment and where its library came from.
#[derive(Clone)]
pub struct OrtLibrary {
    pub environment: ort::environment::Environment,
    pub path: PathBuf,
}

static STARTED: OnceLock<Result<OrtLibrary, String>> = OnceLock::new();

impl OrtLibrary {
    /// Finds the library and starts ONNX Runtime, once per process; later calls return the
    /// first result (a process can load only one ONNX Runtime).
    pub fn start(cfg: &LibraryConfig) -> Result<OrtLibrary, String> {
        STARTED.get_or_init(|| start_uncached(cfg)).clone()
    }
}

fn start_uncached(cfg: &LibraryConfig) -> Result<OrtLibrary, String> {
    let path = locate(cfg)?;
    let env = ort::init_from(&path)
        .map_err(|e| format!("could not load ONNX Runtime from {}: {e}", path.display()))?
        .with_name("modelfn")
        .build()
        .map_err(|e| format!("could not start ONNX Runtime from {}: {e}", path.display()))?;
    tracing::info!(library = %path.display(), "ONNX Runtime loaded");
    Ok(OrtLibrary {
        environment: env,
        path,
    })
}

/// Finds `libonnxruntime`, installing it with pip if allowed and needed.
pub fn locate(cfg: &LibraryConfig) -> Result<PathBuf, String> {
    if let Some(p) = &cfg.path {
        return if p.is_file() {
            Ok(p.clone())
        } else {
            Err(format!(
                "ONNX Runtime library {} (ORT_DYLIB_PATH) does not exist; point it at libonnxruntime.so, or unset it to let modelfn find or install one",
                p.display()
            ))
        };
    }
    if let Some(found) = search_paths(cfg).into_iter().find(|p| p.is_file()) {
        return Ok(found);
    }
    if let Some(found) = python_onnxruntime(&cfg.python()) {
        return Ok(found);
    }
    let Some(cache) = cfg.cache() else {
        return Err(missing("no cache directory (set HOME or XDG_CACHE_HOME)"));
    };
    if !cfg.allow_pip {
        return Err(missing("installing it with pip is turned off"));
    }
    install_with_pip(&cfg.python(), &cache)
}

fn missing(why: &str) -> String {
    format!(
        "ONNX Runtime {ORT_VERSION} was not found and was not installed ({why}). Fix: `pip install onnxruntime=={ORT_VERSION}`, or set ORT_DYLIB_PATH to a libonnxruntime.so"
    )
}

fn search_paths(cfg: &LibraryConfig) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir);
    }
    if let Some(d) = &cfg.data_dir {
        dirs.push(d.join("lib"));
    }
    let mut paths: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| [d.join(LIB_NAME), d.join("libonnxruntime.so")])
        .collect();
    if let Some(c) = cfg.cache() {
        paths.push(pip_target(&c).join("onnxruntime/capi").join(LIB_NAME));
    }
    paths
}

/// `$XDG_CACHE_HOME/modelfn` or `~/.cache/modelfn`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("modelfn"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/modelfn"))
}

fn pip_target(cache: &Path) -> PathBuf {
    cache.join(format!("onnxruntime-{ORT_VERSION}"))
}

/// Asks an installed Python where its `onnxruntime` package keeps the library.
fn python_onnxruntime(python: &str) -> Option<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let capi = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    libs.sort();
    libs.pop()
}

fn install_with_pip(python: &str, cache: &Path) -> Result<PathBuf, String> {
    let target = pip_target(cache);
    let staging = cache.join(format!(
        "onnxruntime-{ORT_VERSION}.partial-{}",
        std::process::id()
    ));
    eprintln!(
        "modelfn: ONNX Runtime {ORT_VERSION} not found; installing the onnxruntime=={ORT_VERSION} wheel with pip into {} (once)",
        target.display()
    );
    std::fs::create_dir_all(cache)
        .map_err(|e| missing(&format!("cannot create {}: {e}", cache.display())))?;
    // On a terminal pip draws its download bar (the wheel is about 17 MB); in a log it is
    // quiet.
    let shown: &[&str] = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        &["--progress-bar", "on"]
    } else {
        &["--quiet"]
    };
    let status = Command::new(python)
        .args(["-m", "pip", "install"])
        .args(shown)
        .args(["--disable-pip-version-check", "--no-deps", "--target"])
        .arg(&staging)
        .arg(format!("onnxruntime=={ORT_VERSION}"))
        .status()
        .map_err(|e| missing(&format!("could not run `{python} -m pip`: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(missing(&format!(
            "`pip install onnxruntime=={ORT_VERSION}` failed ({status})"
        )));
    }
    // Another process may have finished first: either copy is complete, keep the one in place.
    if std::fs::rename(&staging, &target).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let lib = target.join("onnxruntime/capi").join(LIB_NAME);
    if lib.is_file() {
        Ok(lib)
    } else {
        Err(missing(&format!(
            "pip installed no {LIB_NAME} under {}",
            target.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_path_names_the_fix() {
        let cfg = LibraryConfig {
            path: Some(PathBuf::from("/nonexistent/libonnxruntime.so")),
            ..Default::default()
        };
        let err = locate(&cfg).unwrap_err();
        assert!(err.contains("ORT_DYLIB_PATH"), "{err}");
        assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
    }

    fn nowhere(allow_pip: bool, cache: &Path) -> LibraryConfig {
        LibraryConfig {
            path: None,
            data_dir: Some(cache.join("data")),
            allow_pip,
            cache_dir: Some(cache.to_path_buf()),
            python: Some("/nonexistent/python3".into()),
        }
    }

    #[test]
    fn no_library_and_no_pip_is_one_error_naming_the_fix() {
        let cache = std::env::temp_dir().join(format!("modelfn-libtest-{}", std::process::id()));
        let err = locate(&nowhere(false, &cache)).unwrap_err();
        assert!(err.contains("pip install onnxruntime==1.31.1"), "{err}");
        assert!(err.contains("ORT_DYLIB_PATH"), "{err}");
        let err = locate(&nowhere(true, &cache)).unwrap_err();
        assert!(
            err.contains("could not run `/nonexistent/python3 -m pip`"),
            "{err}"
        );
        assert!(err.contains("pip install onnxruntime==1.31.1"), "{err}");
        let _ = std::fs::remove_dir_all(&cache);
    }
}
