//! Versions and aliases: `modelfn versions`, `modelfn alias set|list|shadow|delete`,
//! `modelfn provisioned set|list|delete`.

use super::Conn;
use crate::table;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;

#[derive(Debug, Args)]
pub struct VersionsCommand {
    name: String,
    /// Delete this version instead of listing (refused for the latest and for a version
    /// an alias uses).
    #[arg(long)]
    delete: Option<u64>,
    #[command(flatten)]
    conn: Conn,
}

impl VersionsCommand {
    pub async fn run(self) -> Result<()> {
        let VersionsCommand { name, delete, conn } = self;
        if let Some(v) = delete {
            return conn
                .delete(
                    &format!("/v1/functions/{name}/versions/{v}"),
                    &format!("deleted version {v} of {name}"),
                )
                .await;
        }
        let out = conn
            .client()?
            .get_admin(&format!("/v1/functions/{name}/versions"))
            .await?;
        conn.show(out, table::versions)
    }
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point an alias at a version (`3`) or split it over several (`3:90,4:10`).
    Set {
        name: String,
        alias: String,
        /// `VERSION` or `VERSION:WEIGHT,...` with weights adding up to 100.
        routing: String,
        /// Route one caller key to one version: `header:NAME` or `json:FIELD`.
        #[arg(long)]
        sticky: Option<String>,
        /// Mirror a share of the calls to a challenger version, `VERSION:PERCENT`; its
        /// answers are compared (`modelfn alias shadow`), never returned.
        #[arg(long)]
        shadow: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a function's aliases and the history of their moves.
    List {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// How an alias's shadow challenger agrees with the answers returned.
    Shadow {
        name: String,
        alias: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete an alias.
    Delete {
        name: String,
        alias: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvisionedCommand {
    /// Keep COUNT instances started for a version (`3`) or an alias (`prod`, split over
    /// its versions by weight); waits until they are up.
    Set {
        name: String,
        qualifier: String,
        count: u32,
        /// Answer at once instead of waiting for the instances (status IN_PROGRESS).
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a function's provisioned concurrency and how much of it is up.
    List {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a version's or an alias's provisioned concurrency.
    Delete {
        name: String,
        qualifier: String,
        #[command(flatten)]
        conn: Conn,
    },
}

impl ProvisionedCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            ProvisionedCommand::Set {
                name,
                qualifier,
                count,
                no_wait,
                conn,
            } => {
                let body = serde_json::json!({"count": count, "wait": !no_wait});
                let out = conn
                    .client()?
                    .put_admin(
                        &format!("/v1/functions/{name}/provisioned/{qualifier}"),
                        serde_json::to_vec(&body)?,
                    )
                    .await?;
                conn.show(out, table::provisioned_one)
            }
            ProvisionedCommand::List { name, conn } => {
                let out = conn
                    .client()?
                    .get_admin(&format!("/v1/functions/{name}/provisioned"))
                    .await?;
                conn.show(out, |l: &Vec<_>| table::provisioned(l))
            }
            ProvisionedCommand::Delete {
                name,
                qualifier,
                conn,
            } => {
                conn.delete(
                    &format!("/v1/functions/{name}/provisioned/{qualifier}"),
                    &format!("deleted the provisioned concurrency of {name}:{qualifier}"),
                )
                .await
            }
        }
    }
}

/// `3` (all traffic) or `3:90,4:10`.
fn parse_routing(text: &str) -> Result<BTreeMap<String, u32>> {
    if !text.contains(':') {
        return Ok(BTreeMap::from([(text.trim().to_string(), 100)]));
    }
    let mut out = BTreeMap::new();
    for part in text.split(',') {
        let Some((v, w)) = part.split_once(':') else {
            bail!("{part:?}: write VERSION:WEIGHT, e.g. 3:90,4:10");
        };
        let w: u32 = w
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{part:?}: the weight is not a whole number"))?;
        out.insert(v.trim().to_string(), w);
    }
    Ok(out)
}

/// `VERSION:PERCENT`.
fn parse_shadow(text: &str) -> Result<serde_json::Value> {
    let parsed = text
        .split_once(':')
        .and_then(|(v, p)| Some((v.trim().parse::<u64>().ok()?, p.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((version, percent)) => Ok(serde_json::json!({"version": version, "percent": percent})),
        None => bail!("--shadow {text:?}: write VERSION:PERCENT, e.g. 4:10"),
    }
}

impl AliasCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            AliasCommand::Set {
                name,
                alias,
                routing,
                sticky,
                shadow,
                description,
                conn,
            } => {
                let body = serde_json::json!({
                    "routing": parse_routing(&routing)?,
                    "sticky": sticky,
                    "shadow": shadow.as_deref().map(parse_shadow).transpose()?,
                    "description": description,
                });
                let out = conn
                    .client()?
                    .put_admin(
                        &format!("/v1/functions/{name}/aliases/{alias}"),
                        serde_json::to_vec(&body)?,
                    )
                    .await?;
                conn.show(out, table::alias_set)
            }
            AliasCommand::List { name, conn } => {
                let out = conn
                    .client()?
                    .get_admin(&format!("/v1/functions/{name}/aliases"))
                    .await?;
                conn.show(out, table::aliases)
            }
            AliasCommand::Shadow { name, alias, conn } => {
                let out = conn
                    .client()?
                    .get_admin(&format!("/v1/functions/{name}/aliases/{alias}/shadow"))
                    .await?;
                conn.show(out, table::shadow)
            }
            AliasCommand::Delete { name, alias, conn } => {
                conn.delete(
                    &format!("/v1/functions/{name}/aliases/{alias}"),
                    &format!("deleted alias {alias} of {name}"),
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn routing_reads_one_version_or_weights() {
        assert_eq!(super::parse_routing("3").unwrap()["3"], 100);
        let r = super::parse_routing("3:90, 4:10").unwrap();
        assert_eq!((r["3"], r["4"]), (90, 10));
        assert!(super::parse_routing("3:x").is_err());
        assert!(super::parse_routing("3:90,4").is_err());
        assert_eq!(super::parse_shadow("4:10").unwrap()["percent"], 10);
        assert!(super::parse_shadow("4").is_err());
    }
}
