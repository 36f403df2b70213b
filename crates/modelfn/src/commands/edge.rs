//! The edge: APIs, function URLs, usage plans and access keys.

use super::Conn;
use crate::table;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Create or replace an API from its definition file.
    Apply {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// List APIs, their stage URLs and routes.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete an API.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl ApiCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            ApiCommand::Apply { file, conn } => {
                let text =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let out = conn
                    .client()?
                    .post_admin_raw("/v1/apis", text, "application/toml")
                    .await?;
                conn.show(out, table::api)
            }
            ApiCommand::List { conn } => {
                let out = conn.client()?.get_admin("/v1/apis").await?;
                conn.show(out, table::apis)
            }
            ApiCommand::Delete { name, conn } => {
                conn.delete(&format!("/v1/apis/{name}"), &format!("deleted API {name}"))
                    .await
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UrlCommand {
    /// Create (or change) a function's URL; `NAME:ALIAS` or `NAME:VERSION` binds it to an
    /// alias or a version (plain `NAME` calls `$LATEST`).
    Create {
        name: String,
        /// `none`: anyone may call it; `key`: callers send a modelfn key's secret as x-api-key.
        #[arg(long, default_value = "none", value_parser = ["none", "key"])]
        auth: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a function's URL.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl UrlCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            UrlCommand::Create { name, auth, conn } => {
                let (name, qualifier) = match name.split_once(':') {
                    Some((n, q)) => (n.to_string(), Some(q.to_string())),
                    None => (name, None),
                };
                let body = serde_json::to_vec(
                    &serde_json::json!({ "auth": auth, "qualifier": qualifier }),
                )?;
                let out = conn
                    .client()?
                    .put_admin(&format!("/v1/functions/{name}/url"), body)
                    .await?;
                conn.show(out, table::url)
            }
            UrlCommand::Delete { name, conn } => {
                conn.delete(
                    &format!("/v1/functions/{name}/url"),
                    &format!("removed the URL of {name}"),
                )
                .await
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// Create or replace a usage plan.
    Create {
        name: String,
        /// Requests per second.
        #[arg(long)]
        rate: f64,
        /// Requests at once above the rate.
        #[arg(long)]
        burst: u32,
        /// Requests per period.
        #[arg(long)]
        quota: Option<u64>,
        #[arg(long, default_value = "day", value_parser = ["day", "month"])]
        period: String,
        /// An API stage (API/STAGE) or a function URL (url:FUNCTION); repeat for several.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// An access key id in the plan; repeat for several.
        #[arg(long = "key")]
        keys: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List usage plans.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a usage plan.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl PlansCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            PlansCommand::Create {
                name,
                rate,
                burst,
                quota,
                period,
                targets,
                keys,
                conn,
            } => {
                let body = serde_json::json!({"rate": rate, "burst": burst, "quota": quota, "period": period, "targets": targets, "keys": keys});
                let out = conn
                    .client()?
                    .put_admin(&format!("/v1/plans/{name}"), serde_json::to_vec(&body)?)
                    .await?;
                conn.show(out, |p: &table::UsagePlan| {
                    table::plans(&table::Plans {
                        plans: vec![p.clone()],
                    })
                })
            }
            PlansCommand::List { conn } => {
                let out = conn.client()?.get_admin("/v1/plans").await?;
                conn.show(out, table::plans)
            }
            PlansCommand::Delete { name, conn } => {
                conn.delete(
                    &format!("/v1/plans/{name}"),
                    &format!("deleted usage plan {name}"),
                )
                .await
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an access key; its secret is printed this once.
    Create {
        name: String,
        /// Let the key change what serves through the AWS management calls (Lambda's
        /// provisioned concurrency, SageMaker endpoint weights), not only invoke.
        #[arg(long)]
        manage: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List access keys (without secrets).
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete an access key.
    Delete {
        access_key_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Requests per day made with a key.
    Usage {
        access_key_id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl KeysCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            KeysCommand::Usage {
                access_key_id,
                conn,
            } => {
                let out = conn
                    .client()?
                    .get_admin(&format!("/v1/keys/{access_key_id}/usage"))
                    .await?;
                conn.show(out, table::key_usage)
            }
            KeysCommand::Create { name, manage, conn } => {
                let body =
                    serde_json::to_vec(&serde_json::json!({ "name": name, "manage": manage }))?;
                let client = conn.client()?;
                let out = client.post_admin("/v1/keys", body).await?;
                conn.show(out, table::key_created)
            }
            KeysCommand::List { conn } => {
                let out = conn.client()?.get_admin("/v1/keys").await?;
                conn.show(out, table::keys)
            }
            KeysCommand::Delete {
                access_key_id,
                conn,
            } => {
                conn.delete(
                    &format!("/v1/keys/{access_key_id}"),
                    &format!("deleted access key {access_key_id}"),
                )
                .await
            }
        }
    }
}
