//! The model store: `modelfn model put|list|rollback`.

use super::Conn;
use crate::table;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Store a new revision of a model and make it current: functions following it
    /// (`[model] file = "store:NAME"`) switch once each starts with it and answers its
    /// test event; otherwise nothing changes and the reason is printed.
    Put {
        name: String,
        file: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List models (or one model's revisions) with their digests.
    List {
        name: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Make an earlier revision current again (default: the one before the current).
    Rollback {
        name: String,
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
}

impl ModelCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            ModelCommand::Put {
                name,
                file,
                description,
                conn,
            } => {
                let data =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let client = conn.client()?;
                let path = format!(
                    "/v1/store/models/{name}?description={}",
                    url_escape(&description)
                );
                let out = client.put_admin_raw(&path, data, "the model").await?;
                conn.show(out, table::model_moved)
            }
            ModelCommand::List { name, conn } => {
                let client = conn.client()?;
                let out = match &name {
                    Some(n) => {
                        let one = client.get_admin(&format!("/v1/store/models/{n}")).await?;
                        serde_json::Value::Array(vec![one])
                    }
                    None => client.get_admin("/v1/store/models").await?,
                };
                conn.show(out, table::models)
            }
            ModelCommand::Rollback { name, to, conn } => {
                let path = match to {
                    Some(r) => format!("/v1/store/models/{name}/rollback?to={r}"),
                    None => format!("/v1/store/models/{name}/rollback"),
                };
                let out = conn.client()?.post_admin(&path, Vec::new()).await?;
                conn.show(out, table::model_moved)
            }
        }
    }
}

/// Percent-encodes a query value.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
