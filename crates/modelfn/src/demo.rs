//! `modelfn demo`: a server with every example deployed, and requests to paste.

use crate::config::ServeConfig;
use crate::server;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Builds and publishes each `examples/layers/<name>/requirements.txt` not published yet
/// (the Python examples need them). Failures are reported, not fatal: the examples that
/// need a missing layer are then not deployed.
async fn publish_layers(running: &server::RunningServer, dir: &Path, verbose: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let published = running.control.list_layers().await.unwrap_or_default();
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    for d in dirs {
        let req = d.join("requirements.txt");
        let Some(name) = d
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| modelfn_core::FunctionName::parse(n).ok())
        else {
            continue;
        };
        if !req.is_file() || published.iter().any(|l| l.name == name.as_str()) {
            continue;
        }
        println!(
            "building layer {name} from {} (once; pip downloads the packages{})",
            req.display(),
            if verbose {
                ""
            } else {
                "; --verbose shows pip's output"
            }
        );
        let python = std::env::var("MODELFN_PYTHON").unwrap_or_else(|_| "python3".into());
        let req2 = req.clone();
        let built = tokio::task::spawn_blocking(move || {
            crate::layer::build_with_pip(&python, &req2, verbose)
        })
        .await;
        let archive = match built {
            Ok(Ok(layer)) => modelfn_registry::package::pack_dir(layer.path()),
            Ok(Err(e)) => {
                println!("could not build layer {name}: {e:#}");
                continue;
            }
            Err(e) => {
                println!("could not build layer {name}: {e}");
                continue;
            }
        };
        match archive {
            Ok(a) => match running
                .control
                .publish_layer(&name, a.into(), "built by modelfn demo")
                .await
            {
                Ok(info) => println!("published layer {name} version {}", info.layer.version),
                Err(e) => println!("could not publish layer {name}: {e}"),
            },
            Err(e) => println!("could not pack layer {name}: {e}"),
        }
    }
}

/// Applies `examples/apis/*.toml` whose functions are deployed, through the server's own
/// admin API; answers a sample GET per API: (api, stage, path, query).
async fn apply_apis(
    running: &server::RunningServer,
    base: &str,
    dir: &Path,
) -> Vec<(String, String, String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let token = std::fs::read_to_string(&running.token_path).unwrap_or_default();
    let Ok(client) = crate::client::Client::new(base, Some(token.trim().to_string())) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let samples: &[(&str, &str, &str, &str)] = &[
        ("calc", "PRD", "/addfive", "?num=5"),
        ("iris", "prod", "/", "?sl=6.9&sw=3.1&pl=5.1&pw=2.3"),
    ];
    let mut applied = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read(&f) else {
            continue;
        };
        match client.post_admin_raw("/v1/apis", text, "text/plain").await {
            Ok(out) => {
                let name = out["name"].as_str().unwrap_or_default().to_string();
                println!("applied API {name}");
                if let Some((a, st, p, q)) = samples.iter().find(|(a, ..)| *a == name) {
                    applied.push((a.to_string(), st.to_string(), p.to_string(), q.to_string()));
                }
            }
            Err(e) => println!("did not apply {}: {e}", f.display()),
        }
    }
    applied
}

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

pub async fn run(cfg: ServeConfig, examples: Option<PathBuf>, verbose: bool) -> Result<()> {
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
    publish_layers(&running, &dir.join("layers"), verbose).await;
    // A `provided` example needs its binary built first: deployed when it is there.
    names.retain(|p| !p.join("Cargo.toml").is_file() || p.join("bootstrap").is_file());
    for fdir in &names {
        let archive = modelfn_registry::package::pack_dir(fdir)?;
        match running.control.deploy(archive.into(), None, true).await {
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
    let applied = apply_apis(&running, &base, &dir.join("apis")).await;
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
    for (api, stage, path, query) in &applied {
        println!("  curl -s '{base}/apis/{api}/{stage}{path}{query}'");
    }
    println!(
        "\nAdmin API: curl -s -H \"Authorization: Bearer $(cat {})\" {base}/v1/functions",
        running.token_path.display()
    );
    println!("Stop with Ctrl-C.");
    running.wait().await
}
