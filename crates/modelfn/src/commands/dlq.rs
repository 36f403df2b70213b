//! Asynchronous invocations from the command line: an event's status and answer, each
//! function's queue, and the dead-letter store (list, show, redrive).

use super::Conn;
use anyhow::{bail, Result};
use clap::Subcommand;
use modelfn_queue::{EventStatus, QueueDepth};
use serde::Deserialize;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead letters, newest first: events out of attempts or age.
    List {
        /// One function's (every function's when left out).
        name: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
    },
    /// One dead letter, with its event and why it failed.
    Show {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Dead letters back to the queue, with fresh attempts (a function's, or one by id).
    Redrive {
        name: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Subcommand)]
pub enum AsyncCommand {
    /// Where an asynchronous event is, and its answer once it has one.
    Status {
        request_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Every function's queue: waiting, running, succeeded, dead.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Deserialize)]
struct Dead {
    events: Vec<EventStatus>,
}

#[derive(Deserialize)]
struct Depths {
    functions: Vec<QueueDepth>,
    running: u64,
}

fn when(ms: Option<i64>) -> String {
    ms.map(modelfn_telemetry::time::rfc3339_ms)
        .unwrap_or_else(|| "-".into())
}

impl DlqCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            DlqCommand::List { name, limit, conn } => {
                let mut q = vec![("limit", limit.to_string())];
                if let Some(n) = name {
                    q.push(("function", n));
                }
                let out = conn.client()?.get_admin_query("/v1/dlq", &q).await?;
                conn.show(out, |d: &Dead| {
                    let mut s = format!(
                        "{:<36}  {:<20} {:>8}  {:<24}  ERROR\n",
                        "REQUEST ID", "FUNCTION", "ATTEMPTS", "FAILED"
                    );
                    for e in &d.events {
                        s.push_str(&format!(
                            "{:<36}  {:<20} {:>8}  {:<24}  {}\n",
                            e.id,
                            e.function,
                            e.attempts,
                            when(e.finished_ms),
                            e.last_error.as_deref().unwrap_or("-")
                        ));
                    }
                    if d.events.is_empty() {
                        s.push_str("(no dead letters)\n");
                    }
                    s
                })
            }
            DlqCommand::Show { id, conn } => {
                let out = conn
                    .client()?
                    .get_admin_query("/v1/dlq", &[("id", id.clone())])
                    .await?;
                let Some(event) = out["events"].get(0) else {
                    bail!("no dead letter {id}");
                };
                println!("{}", serde_json::to_string_pretty(event)?);
                Ok(())
            }
            DlqCommand::Redrive { name, id, conn } => {
                if name.is_none() && id.is_none() {
                    bail!("name what to redrive: a function, --id REQUEST_ID, or both");
                }
                let mut q = Vec::new();
                if let Some(n) = name {
                    q.push(("function", n));
                }
                if let Some(i) = id {
                    q.push(("id", i));
                }
                let query: Vec<String> = q
                    .iter()
                    .map(|(k, v)| format!("{k}={}", super::percent_encode(v)))
                    .collect();
                let query = query.join("&");
                let out = conn
                    .client()?
                    .post_admin(&format!("/v1/dlq/redrive?{query}"), Vec::new())
                    .await?;
                println!("redriven: {}", out["redriven"].as_u64().unwrap_or(0));
                Ok(())
            }
        }
    }
}

impl AsyncCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            AsyncCommand::Status { request_id, conn } => {
                let out = conn
                    .client()?
                    .get_admin(&format!("/v1/async/{request_id}"))
                    .await?;
                println!("{}", serde_json::to_string_pretty(&out)?);
                Ok(())
            }
            AsyncCommand::List { conn } => {
                let out = conn.client()?.get_admin("/v1/async").await?;
                conn.show(out, |d: &Depths| {
                    let mut s = format!(
                        "{:<20} {:>8} {:>8} {:>10} {:>6}  OLDEST WAITING\n",
                        "FUNCTION", "QUEUED", "RUNNING", "SUCCEEDED", "DEAD"
                    );
                    for f in &d.functions {
                        s.push_str(&format!(
                            "{:<20} {:>8} {:>8} {:>10} {:>6}  {}\n",
                            f.function,
                            f.queued,
                            f.running,
                            f.succeeded,
                            f.dead,
                            when(f.oldest_ms)
                        ));
                    }
                    s.push_str(&format!("running now on this server: {}\n", d.running));
                    s
                })
            }
        }
    }
}
