//! Layers and saved test events.

use super::{read_data, Conn};
use crate::table;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// Build a layer with pip from a requirements file, or publish a prepared directory.
    Publish {
        name: String,
        /// Install these requirements with pip into the layer's python/ directory.
        #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
        requirements: Option<PathBuf>,
        /// Publish this directory as it is (python/ for Python packages, bin/ and lib/ for others).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value = "")]
        description: String,
        /// The Python whose pip builds the layer (it should match the functions' Python).
        #[arg(long, env = "MODELFN_PYTHON", default_value = "python3")]
        python: String,
        /// Show pip's whole output (by default it is folded into one line).
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List every layer version.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

impl LayerCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            LayerCommand::Publish {
                name,
                requirements,
                dir,
                description,
                python,
                verbose,
                conn,
            } => {
                let client = conn.client()?;
                let archive = match (requirements, dir) {
                    (Some(req), _) => {
                        let built = crate::layer::build_with_pip(&python, &req, verbose)?;
                        modelfn_registry::package::pack_dir(built.path())?
                    }
                    (None, Some(d)) => modelfn_registry::package::pack_dir(&d)
                        .with_context(|| format!("packing {}", d.display()))?,
                    (None, None) => bail!("give --requirements FILE or --dir DIR"),
                };
                let out = client.publish_layer(&name, archive, &description).await?;
                conn.show(out, table::layer_published)
            }
            LayerCommand::List { conn } => {
                let out = conn.client()?.get_admin("/v1/layers").await?;
                conn.show(out, table::layers)
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Save (or replace) a named test event.
    Save {
        function: String,
        event: String,
        /// The event as JSON, or @FILE.
        #[arg(
            long,
            short = 'd',
            conflicts_with = "event_file",
            required_unless_present = "event_file"
        )]
        data: Option<String>,
        #[arg(long)]
        event_file: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a function's saved test events.
    List {
        function: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl EventsCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            EventsCommand::Save {
                function,
                event,
                data,
                event_file,
                conn,
            } => {
                let body = match (event_file, data) {
                    (Some(f), _) => {
                        std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?
                    }
                    (None, Some(d)) => read_data(&d)?,
                    (None, None) => bail!("give --data JSON or --event-file FILE"),
                };
                conn.client()?
                    .put_admin(&format!("/v1/functions/{function}/events/{event}"), body)
                    .await?;
                println!("saved test event {event} of {function}");
                Ok(())
            }
            EventsCommand::List { function, conn } => {
                let out = conn
                    .client()?
                    .get_admin(&format!("/v1/functions/{function}/events"))
                    .await?;
                for e in out["events"].as_array().cloned().unwrap_or_default() {
                    println!("{}", e.as_str().unwrap_or_default());
                }
                Ok(())
            }
        }
    }
}
