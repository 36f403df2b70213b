//! `modelfn streams`: every shard of every stream source this server reads, with what it
//! processed, its errors and dead letters, its lag and iterator age.

use super::Conn;
use anyhow::Result;
use clap::Args;
use modelfn_streams::ShardStatus;
use serde::Deserialize;

#[derive(Debug, Args)]
pub struct StreamsCommand {
    /// One function's shards (every function's when left out).
    name: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Deserialize)]
struct Shards {
    shards: Vec<ShardStatus>,
}

impl StreamsCommand {
    pub async fn run(self) -> Result<()> {
        let StreamsCommand { name, conn } = self;
        let mut out = conn.client()?.get_admin("/v1/streams").await?;
        if let (Some(n), Some(list)) = (&name, out["shards"].as_array_mut()) {
            list.retain(|s| s["function"] == n.as_str());
        }
        conn.show(out, |d: &Shards| {
            let header = [
                "FUNCTION", "SHARD", "RECORDS", "ERRORS", "DEAD", "LAG", "AGE", "STATE",
            ];
            let rows: Vec<Vec<String>> = d
                .shards
                .iter()
                .map(|s| {
                    vec![
                        s.function.clone(),
                        s.shard.clone(),
                        s.records.to_string(),
                        s.errors.to_string(),
                        s.dead.to_string(),
                        s.lag.to_string(),
                        format!("{:.1}s", s.iterator_age_ms as f64 / 1000.0),
                        match (&s.last_error, s.connected) {
                            (_, true) => format!("reading {}", s.redis),
                            (Some(e), false) => format!("error: {e}"),
                            (None, false) => "connecting".into(),
                        },
                    ]
                })
                .collect();
            if rows.is_empty() {
                return "(no stream sources: add a [[streams]] table to a function's modelfn.toml)\n".into();
            }
            crate::table::render_rows(&header, &rows)
        })
    }
}
