//! Functions: deploy, invoke, list, describe, delete, logs and config.

use super::{read_data, Conn};
use crate::table;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DeployCommand {
    /// The function directory (a manifest with `runtime = "sklearn"` is converted to
    /// ONNX here first).
    #[arg(required_unless_present = "from_sklearn")]
    dir: Option<PathBuf>,
    /// Deploy under this name instead of the manifest's.
    #[arg(long)]
    name: Option<String>,
    /// Do not start the function before it replaces the serving version (as Lambda
    /// does): a failing init is then reported by every invocation.
    #[arg(long)]
    no_validate: bool,
    /// Deploy a scikit-learn pickle (model.joblib, .pkl) as a native ONNX function,
    /// converted and checked here; needs --name and --inputs.
    #[arg(long, conflicts_with = "dir", requires_all = ["name", "inputs"])]
    from_sklearn: Option<PathBuf>,
    /// The model's inputs in feature order, with --from-sklearn: `sl,sw,pl,pw`.
    #[arg(long, value_delimiter = ',')]
    inputs: Vec<String>,
    /// Class names by class index, with --from-sklearn (when the model's labels are
    /// numbers): `setosa,versicolor,virginica`.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Show pip's whole output when the scikit-learn converter is installed.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    conn: Conn,
}

impl DeployCommand {
    pub async fn run(self) -> Result<()> {
        let DeployCommand {
            dir,
            name,
            no_validate,
            from_sklearn,
            inputs,
            labels,
            verbose,
            conn,
        } = self;
        let source;
        let dir = match (dir, &from_sklearn) {
            (_, Some(pickle)) => {
                let n = name.as_deref().unwrap_or_default();
                source = Some(crate::sklearn::package_from_pickle(
                    pickle, n, &inputs, &labels,
                )?);
                source
                    .as_ref()
                    .map(|d| d.path().to_path_buf())
                    .unwrap_or_default()
            }
            (Some(d), None) => d,
            (None, None) => bail!("name a function directory, or --from-sklearn FILE"),
        };
        if !dir.join("modelfn.toml").is_file() {
            bail!(
                "{} has no modelfn.toml: a function directory holds its manifest and files",
                dir.display()
            );
        }
        let converted = crate::sklearn::convert_if_sklearn(&dir, verbose)?;
        let packed = converted.as_ref().map_or(dir.as_path(), |c| c.path());
        let archive = modelfn_registry::package::pack_dir(packed)
            .with_context(|| format!("packing {}", dir.display()))?;
        let label = match &from_sklearn {
            Some(p) => p.display().to_string(),
            None => dir.display().to_string(),
        };
        let out = conn
            .client()?
            .deploy(archive, name.as_deref(), !no_validate, &label)
            .await?;
        conn.show(out, table::deployed)
    }
}

/// The event piped on standard input (at most 6 MB, Lambda's payload limit), or `{}`
/// when standard input is a terminal or empty.
fn stdin_event() -> Result<Vec<u8>> {
    use std::io::{IsTerminal, Read};
    const MAX: u64 = 6 * 1024 * 1024;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(b"{}".to_vec());
    }
    let mut event = Vec::new();
    stdin
        .lock()
        .take(MAX + 1)
        .read_to_end(&mut event)
        .context("reading the event from standard input")?;
    if event.len() as u64 > MAX {
        bail!("the event on standard input is over 6 MB, Lambda's payload limit");
    }
    if event.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"{}".to_vec());
    }
    Ok(event)
}

#[derive(Debug, Args)]
pub struct InvokeCommand {
    name: String,
    /// The event: JSON (or CSV with --content-type text/csv), or @FILE to read it from a
    /// file. Without it, a piped standard input is the event, else `{}`.
    #[arg(long, short = 'd', conflicts_with_all = ["event_file", "event"])]
    data: Option<String>,
    /// Read the event from a file.
    #[arg(long, conflicts_with = "event")]
    event_file: Option<PathBuf>,
    /// Send a saved test event (see `modelfn events`).
    #[arg(long)]
    event: Option<String>,
    /// The event's content type.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    #[command(flatten)]
    conn: Conn,
}

impl InvokeCommand {
    pub async fn run(self) -> Result<()> {
        let InvokeCommand {
            name,
            data,
            event_file,
            event,
            content_type,
            conn,
        } = self;
        let client = conn.client()?;
        let body = match (event_file, event) {
            (Some(f), _) => std::fs::read(&f)
                .with_context(|| format!("reading the event from {}", f.display()))?,
            (None, Some(e)) => {
                client
                    .get_admin_bytes(&format!("/v1/functions/{name}/events/{e}"))
                    .await?
            }
            (None, None) => match data {
                Some(d) => read_data(&d)?,
                None => stdin_event()?,
            },
        };
        let (status, function_error, text) = client.invoke(&name, body, &content_type).await?;
        if !status.is_success() {
            bail!("{} ({status})", crate::client::error_message(&text))
        }
        println!("{text}");
        if function_error {
            bail!("the function failed (x-modelfn-function-error: Unhandled)");
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct ListCommand {
    #[command(flatten)]
    conn: Conn,
}

impl ListCommand {
    pub async fn run(self) -> Result<()> {
        let ListCommand { conn } = self;
        let out = conn.client()?.get_admin("/v1/functions").await?;
        conn.show(out, table::functions)
    }
}

#[derive(Debug, Args)]
pub struct DescribeCommand {
    name: String,
    #[command(flatten)]
    conn: Conn,
}

impl DescribeCommand {
    pub async fn run(self) -> Result<()> {
        let DescribeCommand { name, conn } = self;
        let out = conn
            .client()?
            .get_admin(&format!("/v1/functions/{name}"))
            .await?;
        conn.show(out, table::detail)
    }
}

#[derive(Debug, Args)]
pub struct DeleteCommand {
    name: String,
    #[command(flatten)]
    conn: Conn,
}

impl DeleteCommand {
    pub async fn run(self) -> Result<()> {
        let DeleteCommand { name, conn } = self;
        conn.delete(&format!("/v1/functions/{name}"), &format!("deleted {name}"))
            .await
    }
}

#[derive(Debug, Args)]
pub struct LogsCommand {
    name: String,
    /// Keep printing new lines as they come.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only lines newer than this: 30s, 10m, 2h, 1d.
    #[arg(long)]
    since: Option<String>,
    /// Only the lines of one request.
    #[arg(long)]
    request_id: Option<String>,
    /// Only the lines of invocations that succeeded, or of those that did not.
    #[arg(long, value_parser = ["success", "error"])]
    status: Option<String>,
    /// Only lines containing this text.
    #[arg(long)]
    grep: Option<String>,
    /// At most this many lines (the newest).
    #[arg(long, default_value_t = 200)]
    limit: usize,
    #[command(flatten)]
    conn: Conn,
}

impl LogsCommand {
    pub async fn run(self) -> Result<()> {
        let LogsCommand {
            name,
            follow,
            since,
            request_id,
            status,
            grep,
            limit,
            conn,
        } = self;
        let client = conn.client()?;
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        let filters = [
            ("since", since),
            ("request_id", request_id),
            ("status", status),
            ("contains", grep),
        ];
        for (k, v) in filters {
            if let Some(v) = v {
                query.push((k, v));
            }
        }
        let mut after: Option<u64> = None;
        loop {
            let mut q = query.clone();
            if let Some(a) = after {
                q.retain(|(k, _)| *k != "since");
                q.push(("after", a.to_string()));
            }
            let out = client
                .get_admin_query(&format!("/v1/functions/{name}/logs"), &q)
                .await?;
            let lines: table::LogLines = serde_json::from_value(out).context(
                "the server's log lines do not read (is the server another modelfn version?)",
            )?;
            for l in lines.lines {
                if conn.json {
                    println!("{}", serde_json::to_string(&l)?);
                } else {
                    println!("{}  {}", l.timestamp, table::printable(&l.message));
                }
                after = Some(l.seq);
            }
            if !follow {
                return Ok(());
            }
            after = after.or(Some(0));
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

#[derive(Debug, Args)]
pub struct ConfigCommand {
    name: String,
    /// At most this many invocations at once (also reserves them).
    #[arg(long)]
    reserved_concurrency: Option<u32>,
    /// Instances kept initialized at all times.
    #[arg(long = "provisioned")]
    provisioned_concurrency: Option<u32>,
    /// Stop an idle instance after this long (scale to zero): 30s, 5m, 1h.
    #[arg(long)]
    keep_alive: Option<String>,
    /// Models: rows merged into one run at most.
    #[arg(long)]
    max_batch: Option<usize>,
    /// Models: how long a request may wait for others to batch with: 500us, 2ms.
    #[arg(long)]
    max_delay: Option<String>,
    /// Replace every stored setting (unset ones fall back to the manifest).
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    conn: Conn,
}

impl ConfigCommand {
    pub async fn run(self) -> Result<()> {
        let ConfigCommand {
            name,
            reserved_concurrency,
            provisioned_concurrency,
            keep_alive,
            max_batch,
            max_delay,
            replace,
            conn,
        } = self;
        let mut patch = serde_json::Map::new();
        if let Some(v) = reserved_concurrency {
            patch.insert("reserved_concurrency".into(), v.into());
        }
        if let Some(v) = provisioned_concurrency {
            patch.insert("provisioned_concurrency".into(), v.into());
        }
        if let Some(v) = keep_alive {
            patch.insert("keep_alive".into(), v.into());
        }
        if let Some(v) = max_batch {
            patch.insert("max_batch".into(), v.into());
        }
        if let Some(v) = max_delay {
            patch.insert("max_delay".into(), v.into());
        }
        let path = format!(
            "/v1/functions/{name}/config{}",
            if replace { "?replace=true" } else { "" }
        );
        let out = conn
            .client()?
            .put_admin(&path, serde_json::to_vec(&patch)?)
            .await?;
        conn.show(out, table::describe)
    }
}
