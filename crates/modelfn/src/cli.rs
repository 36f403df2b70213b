//! The command-line interface (clap): every command and its flags.

use crate::client::Client;
use crate::config::{default_data_dir, ServeArgs, ServeConfig};
use crate::{demo, server, table};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Serverless machine-learning inference: deploy ONNX models as functions and invoke them over HTTP.
#[derive(Debug, Parser)]
#[command(name = "modelfn", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server with every example deployed, and print requests to try.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// The examples directory (default: ./examples, or the one in the source tree).
        #[arg(long)]
        examples: Option<PathBuf>,
    },
    /// Deploy a function directory (with its modelfn.toml) as a new version.
    Deploy {
        /// The function directory.
        dir: PathBuf,
        /// Deploy under this name instead of the manifest's.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Invoke a function and print its answer.
    Invoke {
        name: String,
        /// The event: JSON (or CSV with --content-type text/csv), or @FILE to read it from a file.
        #[arg(long, short = 'd', default_value = "{}")]
        data: String,
        /// The event's content type.
        #[arg(long, default_value = "application/json")]
        content_type: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List functions.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one function.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a function.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// How the CLI reaches a server.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The server's URL.
    #[arg(long, env = "MODELFN_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin token (default: read from the data directory's admin-token file).
    #[arg(long, env = "MODELFN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's data directory, to find the admin token on this machine.
    #[arg(long, env = "MODELFN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl Conn {
    fn client(&self) -> Result<Client> {
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None => {
                let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
                std::fs::read_to_string(dir.join(server::TOKEN_FILE))
                    .ok()
                    .map(|t| t.trim().to_string())
            }
        };
        Client::new(&self.server, token)
    }
}

fn read_data(data: &str) -> Result<Vec<u8>> {
    match data.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading the event from {path}")),
        None => Ok(data.as_bytes().to_vec()),
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = ServeConfig::load(&args)?;
            server::init_tracing(&cfg);
            let running = server::start(cfg).await?;
            running.wait().await
        }
        Command::Demo { serve, examples } => {
            let cfg = ServeConfig::load(&serve)?;
            server::init_tracing(&cfg);
            demo::run(cfg, examples).await
        }
        Command::Deploy { dir, name, conn } => {
            if !dir.join("modelfn.toml").is_file() {
                bail!(
                    "{} has no modelfn.toml: a function directory holds its manifest and files",
                    dir.display()
                );
            }
            let archive = modelfn_registry::package::pack_dir(&dir)
                .with_context(|| format!("packing {}", dir.display()))?;
            let out = conn.client()?.deploy(archive, name.as_deref()).await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let f = &out["function"];
                let what = if out["created"].as_bool() == Some(true) {
                    "deployed"
                } else {
                    "unchanged"
                };
                println!(
                    "{what} {} version {} ({} runtime, {} MB, {} ms timeout)",
                    f["name"].as_str().unwrap_or(""),
                    f["version"],
                    f["runtime"].as_str().unwrap_or(""),
                    f["memory_mb"],
                    f["timeout_ms"]
                );
            }
            Ok(())
        }
        Command::Invoke {
            name,
            data,
            content_type,
            conn,
        } => {
            let body = read_data(&data)?;
            let (status, text) = conn.client()?.invoke(&name, body, &content_type).await?;
            if status.is_success() {
                println!("{text}");
                Ok(())
            } else {
                bail!("{} ({status})", crate::client::error_message(&text))
            }
        }
        Command::List { conn } => {
            let out = conn.client()?.get_admin("/v1/functions").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::functions(&out["functions"]));
            }
            Ok(())
        }
        Command::Describe { name, conn } => {
            let out = conn
                .client()?
                .get_admin(&format!("/v1/functions/{name}"))
                .await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::describe(&out));
            }
            Ok(())
        }
        Command::Delete { name, conn } => {
            conn.client()?
                .delete(&format!("/v1/functions/{name}"))
                .await?;
            println!("deleted {name}");
            Ok(())
        }
    }
}
