//! `serve` and `demo`.

use crate::config::{ServeArgs, ServeConfig};
use crate::{demo, server};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DemoCommand {
    #[command(flatten)]
    serve: ServeArgs,
    /// The examples directory (default: ./examples, or the one in the source tree).
    #[arg(long)]
    examples: Option<PathBuf>,
    /// Show pip's whole output while layers build (by default one line per layer).
    #[arg(long)]
    verbose: bool,
}

impl DemoCommand {
    pub async fn run(self) -> Result<()> {
        let DemoCommand {
            serve,
            examples,
            verbose,
        } = self;
        let cfg = ServeConfig::load(&serve)?;
        server::init_tracing(&cfg);
        demo::run(cfg, examples, verbose).await
    }
}
