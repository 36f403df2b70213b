//! `modelfn demo`: a server with every example deployed, and requests to paste.

use crate::config::ServeConfig;
use crate::server;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// `./examples`, else the examples of the source tree this binary was built from.
fn examples_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d);
    }
    let here = PathBuf::from("examples");
    if here.is_dir() {
        return Ok(here);
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    if source.is_dir() {
        return Ok(source.canonicalize().unwrap_or(source));
    }
    bail!("no examples directory found: pass --examples DIR")
}

pub async fn run(cfg: ServeConfig, examples: Option<PathBuf>) -> Result<()> {
    let dir = examples_dir(examples)?;
    let running = server::start(cfg).await?;
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("modelfn.toml").is_file())
        .collect();
    names.sort();
    let base = format!("http://{}", running.addr);
    println!();
    for fdir in &names {
        let archive = modelfn_registry::package::pack_dir(fdir)?;
        match running.control.deploy(archive, None, true).await {
            Ok(out) => println!(
                "{} {} (version {})",
                if out.created {
                    "deployed"
                } else {
                    "up to date"
                },
                out.function.name,
                out.function.version
            ),
            Err(e) => println!("could not deploy {}: {e}", fdir.display()),
        }
    }
    println!("\nTry:");
    for fdir in &names {
        let name = fdir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        for (file, ct) in [
            ("request.json", "application/json"),
            ("request.csv", "text/csv"),
        ] {
            let req = fdir.join(file);
            if req.is_file() {
                println!(
                    "  curl -s -X POST {base}/v1/functions/{name}/invoke -H 'Content-Type: {ct}' --data-binary @{}",
                    req.display()
                );
            }
        }
        if let Ok(q) = std::fs::read_to_string(fdir.join("request.query")) {
            println!("  curl -s '{base}/v1/functions/{name}/invoke?{}'", q.trim());
        }
    }
    println!(
        "\nAdmin API: curl -s -H \"Authorization: Bearer $(cat {})\" {base}/v1/functions",
        running.token_path.display()
    );
    println!("Stop with Ctrl-C.");
    running.wait().await
}
