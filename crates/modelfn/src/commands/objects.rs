//! `modelfn object`: the objects of the server's buckets (whose writes and deletes trigger
//! functions with an `[[objects]]` table).

use super::Conn;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ObjectCommand {
    /// Upload a file as BUCKET/KEY (functions whose [[objects]] match are invoked).
    Put {
        /// `bucket/key`, the key with slashes: `uploads/incoming/flowers.csv`.
        target: String,
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Download BUCKET/KEY (to standard output, or a file).
    Get {
        target: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a bucket's objects, or those under a prefix.
    List {
        bucket: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete BUCKET/KEY.
    Delete {
        target: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `bucket/key` → the API path, each part of the key percent-encoded.
fn object_path(target: &str) -> Result<String> {
    let Some((bucket, key)) = target
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
    else {
        bail!("{target:?} is not BUCKET/KEY");
    };
    let key: Vec<String> = key.split('/').map(super::percent_encode).collect();
    Ok(format!("/v1/buckets/{bucket}/{}", key.join("/")))
}

impl ObjectCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            ObjectCommand::Put { target, file, conn } => {
                let body =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let out = conn
                    .client()?
                    .put_admin_raw(&object_path(&target)?, body, &target)
                    .await?;
                println!(
                    "stored {}/{} ({} bytes, sha256 {})",
                    out["bucket"].as_str().unwrap_or("?"),
                    out["key"].as_str().unwrap_or("?"),
                    out["size"],
                    out["etag"].as_str().unwrap_or("?")
                );
                Ok(())
            }
            ObjectCommand::Get {
                target,
                output,
                conn,
            } => {
                let body = conn
                    .client()?
                    .get_admin_bytes(&object_path(&target)?)
                    .await?;
                match output {
                    Some(p) => std::fs::write(&p, body)
                        .with_context(|| format!("writing {}", p.display()))?,
                    None => {
                        use std::io::Write;
                        std::io::stdout().write_all(&body)?;
                    }
                }
                Ok(())
            }
            ObjectCommand::List {
                bucket,
                prefix,
                conn,
            } => {
                let out = conn
                    .client()?
                    .get_admin_query(&format!("/v1/buckets/{bucket}"), &[("prefix", prefix)])
                    .await?;
                if conn.json {
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = out["objects"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|o| {
                                vec![
                                    o["key"].as_str().unwrap_or("?").to_string(),
                                    o["size"].to_string(),
                                    o["modified_ms"]
                                        .as_i64()
                                        .map(modelfn_telemetry::time::rfc3339_ms)
                                        .unwrap_or_default(),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print!(
                    "{}",
                    crate::table::printable(&crate::table::render_rows(
                        &["KEY", "SIZE", "MODIFIED"],
                        &rows
                    ))
                );
                Ok(())
            }
            ObjectCommand::Delete { target, conn } => {
                conn.delete(&object_path(&target)?, &format!("deleted {target}"))
                    .await
            }
        }
    }
}
