//! The command-line interface (clap), a command per file in the spin style: each is a
//! clap struct or subcommand enum with `run(self)`, and the connection flags ([`Conn`])
//! are flattened into each.

mod aliases;
mod cluster;
mod dlq;
mod edge;
mod functions;
mod layers;
mod map;
mod models;
mod objects;
mod observe;
mod serve;
mod streams;
mod top;

pub use aliases::{AliasCommand, ProvisionedCommand, VersionsCommand};
pub use cluster::ClusterCommand;
pub use dlq::{AsyncCommand, DlqCommand};
pub use edge::{ApiCommand, KeysCommand, PlansCommand, UrlCommand};
pub use functions::{
    ConfigCommand, DeleteCommand, DeployCommand, DescribeCommand, InvokeCommand, ListCommand,
    LogsCommand,
};
pub use layers::{EventsCommand, LayerCommand};
pub use map::MapCommand;
pub use models::ModelCommand;
pub use objects::ObjectCommand;
pub use observe::{CostCommand, InvocationsCommand};
pub use serve::DemoCommand;
pub use streams::StreamsCommand;
pub use top::TopCommand;

use crate::client::Client;
use crate::config::{default_data_dir, ServeArgs, ServeConfig};
use crate::server;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Serverless machine-learning inference: deploy ONNX models as functions and invoke them over HTTP.
#[derive(Debug, Parser)]
#[command(name = "modelfn", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server with every example deployed, and print requests to try.
    Demo(DemoCommand),
    /// Deploy a function directory (with its modelfn.toml) as a new version.
    Deploy(DeployCommand),
    /// Invoke a function and print its answer.
    Invoke(InvokeCommand),
    /// Fan out: one invocation per line of a JSON Lines file, with bounded concurrency,
    /// retries and a progress line; the results in the input's order.
    Map(MapCommand),
    /// List functions.
    List(ListCommand),
    /// Show one function.
    Describe(DescribeCommand),
    /// Delete a function.
    Delete(DeleteCommand),
    /// Show a function's logs (its output and START/END/REPORT lines).
    Logs(LogsCommand),
    /// A record of each invocation: when, version, outcome, durations, cold or warm.
    Invocations(InvocationsCommand),
    /// What the recorded usage would cost on Lambda + API Gateway, beside a server.
    Cost(CostCommand),
    /// A live view of every function: invocations/s, errors, p99, running, cold starts.
    Top(TopCommand),
    /// Change a function's scaling settings at once, without a restart.
    Config(ConfigCommand),
    /// List a function's versions (each deploy makes one).
    Versions(VersionsCommand),
    /// Point aliases at versions, with weights: `modelfn alias set iris prod 3:90,4:10`.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Keep instances started for a version or an alias: `modelfn provisioned set iris prod 2`.
    #[command(subcommand)]
    Provisioned(ProvisionedCommand),
    /// Apply, list and delete APIs (stages and routes, defined in a TOML file).
    #[command(subcommand)]
    Api(ApiCommand),
    /// Give a function a URL (`/urls/NAME/`), with no auth or an x-api-key.
    #[command(subcommand)]
    Url(UrlCommand),
    /// Usage plans: rate, burst and quota for keys on API stages and function URLs.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Create, list and delete access keys (the credentials of AWS SDK clients).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Publish and list layers (dependencies shared between functions).
    #[command(subcommand)]
    Layer(LayerCommand),
    /// Save and list named test events of a function.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The model store: put revisions of named models, list them, roll back.
    #[command(subcommand)]
    Model(ModelCommand),
    /// The dead-letter store of asynchronous invocations: list, show, redrive.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Asynchronous invocations: an event's status and answer, each function's queue.
    #[command(subcommand)]
    Async(AsyncCommand),
    /// Stream sources: each shard's records, errors, dead letters, lag and iterator age.
    Streams(StreamsCommand),
    /// The objects of the server's buckets: put, get, list, delete.
    #[command(subcommand)]
    Object(ObjectCommand),
    /// The nodes sharing this server's store: up or lost, applied generation, calls running.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// How the CLI reaches a server.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The server's URL.
    #[arg(long, env = "MODELFN_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The admin token (default: read from the data directory's admin-token file).
    #[arg(long, env = "MODELFN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The server's data directory, to find the admin token on this machine.
    #[arg(long, env = "MODELFN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl Conn {
    /// Prints an answer as pretty JSON (`--json`, as the server sent it) or as the text
    /// `render` makes of it read as the server's type `T` (an answer that does not read is
    /// an error naming what is wrong), with control characters made harmless.
    pub(crate) fn show<T: serde::de::DeserializeOwned>(
        &self,
        out: serde_json::Value,
        render: impl FnOnce(&T) -> String,
    ) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            let typed: T = serde_json::from_value(out).with_context(|| {
                format!(
                    "the server's answer does not read as {} (is the server another modelfn version?)",
                    std::any::type_name::<T>()
                )
            })?;
            print!("{}", crate::table::printable(&render(&typed)));
        }
        Ok(())
    }

    /// Deletes what `path` names on the server, then prints `done`.
    pub(crate) async fn delete(&self, path: &str, done: &str) -> Result<()> {
        self.client()?.delete(path).await?;
        println!("{done}");
        Ok(())
    }

    pub(crate) fn client(&self) -> Result<Client> {
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None => {
                let dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
                std::fs::read_to_string(dir.join(server::TOKEN_FILE))
                    .ok()
                    .map(|t| t.trim().to_string())
            }
        };
        Client::new(&self.server, token)
    }
}

/// `s` for a URL's query or path part: unreserved characters as they are, the rest
/// percent-encoded.
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn read_data(data: &str) -> Result<Vec<u8>> {
    match data.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading the event from {path}")),
        None => Ok(data.as_bytes().to_vec()),
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = ServeConfig::load(&args)?;
            server::init_tracing(&cfg);
            let running = server::start(cfg).await?;
            running.wait().await
        }
        Command::Demo(c) => c.run().await,
        Command::Deploy(c) => c.run().await,
        Command::Invoke(c) => c.run().await,
        Command::Map(c) => c.run().await,
        Command::List(c) => c.run().await,
        Command::Describe(c) => c.run().await,
        Command::Delete(c) => c.run().await,
        Command::Logs(c) => c.run().await,
        Command::Config(c) => c.run().await,
        Command::Versions(c) => c.run().await,
        Command::Alias(c) => c.run().await,
        Command::Invocations(c) => c.run().await,
        Command::Cost(c) => c.run().await,
        Command::Top(c) => c.run().await,
        Command::Provisioned(c) => c.run().await,
        Command::Api(c) => c.run().await,
        Command::Url(c) => c.run().await,
        Command::Plans(c) => c.run().await,
        Command::Keys(c) => c.run().await,
        Command::Layer(c) => c.run().await,
        Command::Events(c) => c.run().await,
        Command::Model(c) => c.run().await,
        Command::Dlq(c) => c.run().await,
        Command::Async(c) => c.run().await,
        Command::Streams(c) => c.run().await,
        Command::Object(c) => c.run().await,
        Command::Cluster(c) => c.run().await,
    }
}
