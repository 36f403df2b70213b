//! `runtime = "sklearn"`: a scikit-learn pickle (`model.joblib`, `.pkl`) converted to ONNX
//! on this machine by `modelfn deploy`, checked row by row against scikit-learn, and
//! deployed as a native ONNX function with the pickle's digest recorded. The conversion
//! runs `convert.py` in a virtual environment of pinned versions that modelfn makes once in
//! its cache, as it installs ONNX Runtime. The server only ever sees ONNX.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The converter's environment (the versions `scripts/make-models.py` uses).
const REQUIREMENTS: &str = "scikit-learn==1.9.1\nskl2onnx==1.20.0\nonnx==1.23.2\nonnxruntime==1.31.1\nnumpy==2.4.6\njoblib==1.6.0\n";
const SCRIPT: &str = include_str!("convert.py");
/// Converters for the scikit-learn interfaces of XGBoost and LightGBM, installed into the
/// environment when a pickle first needs them: (module, requirements, what it is).
const EXTRAS: &[(&str, &str, &str)] = &[
    (
        "xgboost",
        "onnxmltools==1.16.0\nxgboost-cpu==3.2.0\n",
        "the XGBoost converter (onnxmltools, xgboost-cpu: pinned)",
    ),
    (
        "lightgbm",
        "onnxmltools==1.16.0\nlightgbm==4.7.0\n",
        "the LightGBM converter (onnxmltools, lightgbm: pinned)",
    ),
];
/// Rows drawn for the parity check when the manifest gives none.
const PARITY_ROWS: usize = 1000;

/// When `dir`'s manifest says `runtime = "sklearn"`: a private copy of the package with
/// the model converted and the manifest rewritten for `onnx`, ready to deploy.
pub fn convert_if_sklearn(dir: &Path, verbose: bool) -> Result<Option<tempfile::TempDir>> {
    let path = dir.join("modelfn.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    if manifest.get("runtime").and_then(|v| v.as_str()) != Some("sklearn") {
        return Ok(None);
    }
    let model = manifest
        .get_mut("model")
        .and_then(|m| m.as_table_mut())
        .context(
            "runtime \"sklearn\" needs a [model] table: file = \"model.joblib\" and the inputs",
        )?;
    let file = model
        .get("file")
        .and_then(|v| v.as_str())
        .context("[model] file names the pickle (model.joblib or model.pkl)")?
        .to_string();
    modelfn_core::manifest::check_relative_path(&file)
        .map_err(|e| anyhow::anyhow!("[model] file = {file:?}: {e}"))?;
    let inputs = model
        .get("inputs")
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    if inputs == 0 {
        bail!(
            "[model] inputs names the model's features in order (inputs = [\"sl\", \"sw\", ...])"
        );
    }
    let rows = match model.remove("sample_rows") {
        Some(v) => {
            let r = v
                .as_str()
                .context("[model] sample_rows names a CSV file of rows")?
                .to_string();
            modelfn_core::manifest::check_relative_path(&r)
                .map_err(|e| anyhow::anyhow!("[model] sample_rows = {r:?}: {e}"))?;
            Some(r)
        }
        None => None,
    };
    let pickle = dir.join(&file);
    let bytes = std::fs::read(&pickle).with_context(|| format!("reading {}", pickle.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));

    let out = tempfile::Builder::new()
        .prefix("modelfn-sklearn-")
        .tempdir()
        .context("creating a private directory for the converted package")?;
    copy_package(dir, out.path(), &file)?;
    let python = converter_python(verbose)?;
    let convert = || {
        run_converter(
            &python,
            &pickle,
            &out.path().join("model.onnx"),
            inputs,
            rows.as_ref().map(|r| (dir.join(r), r.as_str())),
        )
    };
    let mut report = convert()?;
    if let Some(extra) = EXTRAS
        .iter()
        .find(|(module, _, _)| report["needs"].as_str() == Some(module))
    {
        install_extra(&python, extra, verbose)?;
        report = convert()?;
    }
    if report["ok"] != true {
        let mut why = report["reason"]
            .as_str()
            .unwrap_or("the converter failed")
            .to_string();
        if let Some(rows) = report["differing"].as_array() {
            why.push_str("; for example:");
            for r in rows {
                why.push_str(&format!("\n  {r}"));
            }
        }
        bail!("{file} is not deployed: {why}");
    }
    eprintln!(
        "converted {file} ({}, {}) with {}: {} ({}), labels equal and probabilities within 1e-5 (worst {:.1e})",
        report["estimator"].as_str().unwrap_or("?"),
        report["kind"].as_str().unwrap_or("?"),
        report["converter"].as_str().unwrap_or("?"),
        report["rows"],
        report["rows_from"].as_str().unwrap_or("?"),
        report["worst_difference"].as_f64().unwrap_or(0.0)
    );
    model.insert("file".into(), "model.onnx".into());
    let mut source = toml::Table::new();
    source.insert("file".into(), file.into());
    source.insert("sha256".into(), sha256.into());
    source.insert(
        "converter".into(),
        report["converter"].as_str().unwrap_or("skl2onnx").into(),
    );
    model.insert("source".into(), source.into());
    manifest.insert("runtime".into(), "onnx".into());
    std::fs::write(
        out.path().join("modelfn.toml"),
        toml::to_string(&manifest).context("writing the converted manifest")?,
    )?;
    Ok(Some(out))
}

/// Copies the package's files (not the pickle: the ONNX model replaces it).
fn copy_package(from: &Path, to: &Path, pickle: &str) -> Result<()> {
    for entry in walk(from)? {
        let rel = entry.strip_prefix(from).unwrap_or(&entry);
        if rel == Path::new(pickle) || rel == Path::new("modelfn.toml") {
            continue;
        }
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&entry, &dest).with_context(|| format!("copying {}", entry.display()))?;
    }
    Ok(())
}

/// Every regular file under `dir` (links are not followed).
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let kind = e.file_type()?;
        if kind.is_dir() {
            out.extend(walk(&e.path())?);
        } else if kind.is_file() {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// The converter environment's Python: made once in modelfn's cache with pip.
fn converter_python(verbose: bool) -> Result<PathBuf> {
    let cache = modelfn_runtime_onnx::library::cache_dir()
        .context("no cache directory: set HOME or XDG_CACHE_HOME")?;
    let digest = hex::encode(&Sha256::digest(REQUIREMENTS.as_bytes())[..6]);
    let venv = cache.join(format!("sklearn-converter-{digest}"));
    let python = venv.join("bin/python");
    let stamp = venv.join("ready");
    if stamp.is_file() {
        return Ok(python);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    // One installer at a time (several deploys may start at once); the others wait, then
    // find it ready.
    let lock = std::fs::File::create(cache.join(format!("sklearn-converter-{digest}.lock")))
        .context("creating the converter's lock file")?;
    // SAFETY: flock on a descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("could not lock {}", cache.display());
    }
    if stamp.is_file() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("running python3 -m venv")?;
    if !made.success() {
        bail!("python3 -m venv {} failed ({made})", venv.display());
    }
    pip_install(
        &python,
        &venv.join("requirements.txt"),
        REQUIREMENTS,
        "the scikit-learn converter (skl2onnx, scikit-learn, ONNX Runtime: pinned)",
        verbose,
    )?;
    std::fs::write(&stamp, REQUIREMENTS)?;
    Ok(python)
}

/// Installs an extra converter into the environment, once (under the same lock).
fn install_extra(python: &Path, extra: &(&str, &str, &str), verbose: bool) -> Result<()> {
    let (module, requirements, what) = *extra;
    let venv = python
        .parent()
        .and_then(Path::parent)
        .context("the converter's Python is not in a virtual environment")?;
    let stamp = venv.join(format!("ready-{module}"));
    if stamp.is_file() {
        return Ok(());
    }
    let lock = std::fs::File::create(venv.join("extras.lock"))
        .context("creating the converter's lock file")?;
    // SAFETY: flock on a descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("could not lock {}", venv.display());
    }
    if !stamp.is_file() {
        pip_install(
            python,
            &venv.join(format!("requirements-{module}.txt")),
            requirements,
            what,
            verbose,
        )?;
        std::fs::write(&stamp, requirements)?;
    }
    Ok(())
}

/// `pip install -r` of `text` (written to `requirements`) into the converter environment,
/// its output folded into one redrawn line.
fn pip_install(
    python: &Path,
    requirements: &Path,
    text: &str,
    what: &str,
    verbose: bool,
) -> Result<()> {
    let venv = python.parent().and_then(Path::parent).unwrap_or(python);
    eprintln!(
        "modelfn: installing {what} with pip into {} (once)",
        venv.display()
    );
    std::fs::write(requirements, text)?;
    let mut pip = std::process::Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--progress-bar",
        if verbose { "on" } else { "off" },
        "-r",
    ])
    .arg(requirements);
    let mut folded = crate::layer::fold(pip, requirements).context("running pip")?;
    if !folded.ok {
        for l in &folded.tail {
            eprintln!("  {l}");
        }
        bail!("pip could not install {what} ({})", requirements.display());
    }
    folded.line.finish(&format!("installed {what}"));
    Ok(())
}

/// Runs `convert.py`; answers its JSON report.
fn run_converter(
    python: &Path,
    pickle: &Path,
    out: &Path,
    inputs: usize,
    rows: Option<(PathBuf, &str)>,
) -> Result<Value> {
    let work = tempfile::tempdir().context("creating a directory for the converter")?;
    let script = work.path().join("convert.py");
    std::fs::write(&script, SCRIPT)?;
    let request = serde_json::json!({
        "model": pickle,
        "out": out,
        "inputs": inputs,
        "rows": rows.as_ref().map(|(p, _)| p),
        "rows_name": rows.as_ref().map(|(_, n)| n),
        "count": PARITY_ROWS,
    });
    let req_path = work.path().join("request.json");
    std::fs::write(&req_path, request.to_string())?;
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(&req_path)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().map(serde_json::from_str::<Value>) {
        Some(Ok(v)) => Ok(v),
        Some(Err(_)) | None => bail!(
            "the converter failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    }
}

/// A package for `--from-sklearn FILE --inputs a,b,c`: the pickle and a manifest.
pub fn package_from_pickle(
    pickle: &Path,
    name: &str,
    inputs: &[String],
    labels: &[String],
) -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("modelfn-sklearn-src-")
        .tempdir()
        .context("creating a directory for the package")?;
    let file = pickle
        .file_name()
        .and_then(|f| f.to_str())
        .context("the pickle's file name is not UTF-8")?
        .to_string();
    std::fs::copy(pickle, dir.path().join(&file))
        .with_context(|| format!("reading {}", pickle.display()))?;
    let mut model = toml::Table::new();
    model.insert("file".into(), file.into());
    model.insert("inputs".into(), inputs.to_vec().into());
    if !labels.is_empty() {
        model.insert("labels".into(), labels.to_vec().into());
    }
    let mut manifest = toml::Table::new();
    manifest.insert("name".into(), name.into());
    manifest.insert("runtime".into(), "sklearn".into());
    manifest.insert("model".into(), model.into());
    std::fs::write(
        dir.path().join("modelfn.toml"),
        toml::to_string(&manifest).context("writing the manifest")?,
    )?;
    Ok(dir)
}
