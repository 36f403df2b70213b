//! Seeing what ran: `modelfn invocations NAME` (the records of its invocations, to follow)
//! and `modelfn cost [NAME]` (what the recorded usage would cost on Lambda).

use super::Conn;
use crate::table;
use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct InvocationsCommand {
    name: String,
    /// Keep printing new invocations as they come.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only invocations newer than this: 30s, 10m, 2h, 1d.
    #[arg(long)]
    since: Option<String>,
    /// Only `success`, or only `error` (anything else).
    #[arg(long, value_parser = ["success", "error"])]
    status: Option<String>,
    /// Only one request's.
    #[arg(long)]
    request_id: Option<String>,
    /// At most this many (the newest).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Every node's records, not only this server's (in a cluster each node keeps those
    /// of the calls it served), with a NODE column.
    #[arg(long, conflicts_with = "follow")]
    all_nodes: bool,
    #[command(flatten)]
    conn: Conn,
}

impl InvocationsCommand {
    pub async fn run(self) -> Result<()> {
        let InvocationsCommand {
            name,
            follow,
            since,
            status,
            request_id,
            limit,
            all_nodes,
            conn,
        } = self;
        let client = conn.client()?;
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if all_nodes {
            query.push(("nodes", "all".into()));
        }
        for (k, v) in [
            ("since", since),
            ("status", status),
            ("request_id", request_id),
        ] {
            if let Some(v) = v {
                query.push((k, v));
            }
        }
        let mut after: Option<u64> = None;
        let mut header = !conn.json;
        loop {
            let mut q = query.clone();
            if let Some(a) = after {
                q.retain(|(k, _)| *k != "since");
                q.push(("after", a.to_string()));
            }
            let out = client
                .get_admin_query(&format!("/v1/functions/{name}/invocations"), &q)
                .await?;
            let page: table::Invocations = serde_json::from_value(out).context(
                "the server's records do not read (is the server another modelfn version?)",
            )?;
            if conn.json {
                for r in &page.invocations {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else if !page.invocations.is_empty() || header {
                print!("{}", table::invocations(&page.invocations, header));
                header = false;
            }
            for u in &page.unanswered {
                eprintln!("modelfn: a node did not answer: {u}");
            }
            if let Some(last) = page.invocations.last() {
                after = Some(last.record.seq);
            }
            if !follow {
                return Ok(());
            }
            after = after.or(Some(0));
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}

#[derive(Debug, Args)]
pub struct CostCommand {
    /// One function (every function when left out).
    name: Option<String>,
    /// The span of recorded usage: 1d, 30d.
    #[arg(long, default_value = "30d")]
    period: String,
    /// Project this many invocations a day, like the recorded ones (with --days).
    #[arg(long, requires = "days")]
    per_day: Option<u64>,
    /// Days a month the projection runs (with --per-day).
    #[arg(long, requires = "per_day")]
    days: Option<u32>,
    /// The always-on server it is compared with, per month (default $66.40).
    #[arg(long)]
    server_per_month: Option<f64>,
    /// Lambda's price per GB-second (default $0.0000166667).
    #[arg(long)]
    per_gb_second: Option<f64>,
    /// Lambda's price per million invocations (default $0.20).
    #[arg(long)]
    per_million_invocations: Option<f64>,
    /// API Gateway's price per million calls (default $1).
    #[arg(long)]
    api_per_million: Option<f64>,
    #[command(flatten)]
    conn: Conn,
}

impl CostCommand {
    pub async fn run(self) -> Result<()> {
        let mut q: Vec<(&str, String)> = vec![("period", self.period.clone())];
        if let Some(n) = &self.name {
            q.push(("function", n.clone()));
        }
        let numbers = [
            ("per_day", self.per_day.map(|v| v.to_string())),
            ("days", self.days.map(|v| v.to_string())),
            (
                "server_per_month",
                self.server_per_month.map(|v| v.to_string()),
            ),
            ("per_gb_second", self.per_gb_second.map(|v| v.to_string())),
            (
                "per_million_invocations",
                self.per_million_invocations.map(|v| v.to_string()),
            ),
            (
                "api_per_million",
                self.api_per_million.map(|v| v.to_string()),
            ),
        ];
        for (k, v) in numbers {
            if let Some(v) = v {
                q.push((k, v));
            }
        }
        let out = self.conn.client()?.get_admin_query("/v1/cost", &q).await?;
        self.conn.show(out, table::cost)
    }
}
