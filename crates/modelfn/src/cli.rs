//! The command-line interface (clap): every command and its flags.

use crate::client::Client;
use crate::config::{default_data_dir, ServeArgs, ServeConfig};
use crate::{demo, server, table};
use anyhow::{bail, Context, Result};
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
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// The examples directory (default: ./examples, or the one in the source tree).
        #[arg(long)]
        examples: Option<PathBuf>,
    },
    /// Deploy a function directory (with its modelfn.toml) as a new version.
    Deploy {
        /// The function directory.
        dir: PathBuf,
        /// Deploy under this name instead of the manifest's.
        #[arg(long)]
        name: Option<String>,
        /// Do not start the function before it replaces the serving version (as Lambda
        /// does): a failing init is then reported by every invocation.
        #[arg(long)]
        no_validate: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Invoke a function and print its answer.
    Invoke {
        name: String,
        /// The event: JSON (or CSV with --content-type text/csv), or @FILE to read it from a file.
        #[arg(long, short = 'd', default_value = "{}", conflicts_with_all = ["event_file", "event"])]
        data: String,
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
    },
    /// List functions.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one function.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a function.
    Delete {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a function's logs (its output and START/END/REPORT lines).
    Logs {
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
        /// At most this many lines (the newest).
        #[arg(long, default_value_t = 200)]
        limit: usize,
        #[command(flatten)]
        conn: Conn,
    },
    /// Change a function's scaling settings at once, without a restart.
    Config {
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
    },
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
}

#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// Build a layer with pip from a requirements file, or publish a prepared directory.
    Publish {
        name: String,
        /// Install these requirements with pip into the layer's python/ directory.
        #[arg(long, conflicts_with = "dir", required_unless_present = "dir")]
        requirements: Option<PathBuf>,
        /// Publish this directory as it is (python/ for Python packages, bin/ and lib/ for others).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value = "")]
        description: String,
        /// The Python whose pip builds the layer (it should match the functions' Python).
        #[arg(long, env = "MODELFN_PYTHON", default_value = "python3")]
        python: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List every layer version.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum UrlCommand {
    /// Create (or change) a function's URL.
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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an access key; its secret is printed this once.
    Create {
        name: String,
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

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Save (or replace) a named test event.
    Save {
        function: String,
        event: String,
        /// The event as JSON, or @FILE.
        #[arg(
            long,
            short = 'd',
            conflicts_with = "event_file",
            required_unless_present = "event_file"
        )]
        data: Option<String>,
        #[arg(long)]
        event_file: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a function's saved test events.
    List {
        function: String,
        #[command(flatten)]
        conn: Conn,
    },
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
    fn client(&self) -> Result<Client> {
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

fn read_data(data: &str) -> Result<Vec<u8>> {
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
        Command::Demo { serve, examples } => {
            let cfg = ServeConfig::load(&serve)?;
            server::init_tracing(&cfg);
            demo::run(cfg, examples).await
        }
        Command::Deploy {
            dir,
            name,
            no_validate,
            conn,
        } => {
            if !dir.join("modelfn.toml").is_file() {
                bail!(
                    "{} has no modelfn.toml: a function directory holds its manifest and files",
                    dir.display()
                );
            }
            let archive = modelfn_registry::package::pack_dir(&dir)
                .with_context(|| format!("packing {}", dir.display()))?;
            let out = conn
                .client()?
                .deploy(archive, name.as_deref(), !no_validate)
                .await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let f = &out["function"];
                let what = if out["created"].as_bool() == Some(true) {
                    "deployed"
                } else {
                    "unchanged"
                };
                println!(
                    "{what} {} version {} ({} runtime, {} MB, {} ms timeout)",
                    f["name"].as_str().unwrap_or(""),
                    f["version"],
                    f["runtime"].as_str().unwrap_or(""),
                    f["memory_mb"],
                    f["timeout_ms"]
                );
            }
            Ok(())
        }
        Command::Invoke {
            name,
            data,
            event_file,
            event,
            content_type,
            conn,
        } => {
            let client = conn.client()?;
            let body = match (event_file, event) {
                (Some(f), _) => std::fs::read(&f)
                    .with_context(|| format!("reading the event from {}", f.display()))?,
                (None, Some(e)) => {
                    client
                        .get_admin_bytes(&format!("/v1/functions/{name}/events/{e}"))
                        .await?
                }
                (None, None) => read_data(&data)?,
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
        Command::List { conn } => {
            let out = conn.client()?.get_admin("/v1/functions").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::printable(&table::functions(&out["functions"])));
            }
            Ok(())
        }
        Command::Describe { name, conn } => {
            let out = conn
                .client()?
                .get_admin(&format!("/v1/functions/{name}"))
                .await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::printable(&table::describe(&out)));
            }
            Ok(())
        }
        Command::Delete { name, conn } => {
            conn.client()?
                .delete(&format!("/v1/functions/{name}"))
                .await?;
            println!("deleted {name}");
            Ok(())
        }
        Command::Logs {
            name,
            follow,
            since,
            request_id,
            limit,
            conn,
        } => {
            let client = conn.client()?;
            let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            if let Some(s) = &since {
                query.push(("since", s.clone()));
            }
            if let Some(r) = &request_id {
                query.push(("request_id", r.clone()));
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
                for l in out["lines"].as_array().cloned().unwrap_or_default() {
                    if conn.json {
                        println!("{l}");
                    } else {
                        println!(
                            "{}  {}",
                            l["timestamp"].as_str().unwrap_or(""),
                            crate::table::printable(l["message"].as_str().unwrap_or(""))
                        );
                    }
                    after = l["seq"].as_u64().or(after);
                }
                if !follow {
                    return Ok(());
                }
                after = after.or(Some(0));
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        Command::Config {
            name,
            reserved_concurrency,
            provisioned_concurrency,
            keep_alive,
            max_batch,
            max_delay,
            replace,
            conn,
        } => {
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
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::printable(&table::describe(&out)));
            }
            Ok(())
        }
        Command::Api(ApiCommand::Apply { file, conn }) => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let out = conn
                .client()?
                .post_admin_raw("/v1/apis", text, "application/toml")
                .await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::api(&out));
            }
            Ok(())
        }
        Command::Api(ApiCommand::List { conn }) => {
            let out = conn.client()?.get_admin("/v1/apis").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for a in out["apis"].as_array().cloned().unwrap_or_default() {
                    print!("{}", table::api(&a));
                }
            }
            Ok(())
        }
        Command::Api(ApiCommand::Delete { name, conn }) => {
            conn.client()?.delete(&format!("/v1/apis/{name}")).await?;
            println!("deleted API {name}");
            Ok(())
        }
        Command::Url(UrlCommand::Create { name, auth, conn }) => {
            let body = serde_json::to_vec(&serde_json::json!({ "auth": auth }))?;
            let out = conn
                .client()?
                .put_admin(&format!("/v1/functions/{name}/url"), body)
                .await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{}  (auth: {auth})",
                    out["url"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Url(UrlCommand::Delete { name, conn }) => {
            conn.client()?
                .delete(&format!("/v1/functions/{name}/url"))
                .await?;
            println!("removed the URL of {name}");
            Ok(())
        }
        Command::Plans(PlansCommand::Create {
            name,
            rate,
            burst,
            quota,
            period,
            targets,
            keys,
            conn,
        }) => {
            let body = serde_json::json!({"rate": rate, "burst": burst, "quota": quota, "period": period, "targets": targets, "keys": keys});
            let out = conn
                .client()?
                .put_admin(&format!("/v1/plans/{name}"), serde_json::to_vec(&body)?)
                .await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Plans(PlansCommand::List { conn }) => {
            let out = conn.client()?.get_admin("/v1/plans").await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Plans(PlansCommand::Delete { name, conn }) => {
            conn.client()?.delete(&format!("/v1/plans/{name}")).await?;
            println!("deleted usage plan {name}");
            Ok(())
        }
        Command::Keys(KeysCommand::Usage {
            access_key_id,
            conn,
        }) => {
            let out = conn
                .client()?
                .get_admin(&format!("/v1/keys/{access_key_id}/usage"))
                .await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for (day, n) in out["days"].as_object().cloned().unwrap_or_default() {
                    println!("{day}  {n}");
                }
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Create { name, conn }) => {
            let body = serde_json::to_vec(&serde_json::json!({ "name": name }))?;
            let client = conn.client()?;
            let out = client.post_admin("/v1/keys", body).await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "access key id:     {}",
                    out["access_key_id"].as_str().unwrap_or_default()
                );
                println!(
                    "secret access key: {}",
                    out["secret_access_key"].as_str().unwrap_or_default()
                );
                println!(
                    "api key:           {}",
                    out["api_key"].as_str().unwrap_or_default()
                );
                println!("(shown this once: AWS SDKs sign with the id and secret as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; APIs and function URLs take the api key as x-api-key)");
            }
            Ok(())
        }
        Command::Keys(KeysCommand::List { conn }) => {
            let out = conn.client()?.get_admin("/v1/keys").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for k in out["keys"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}  {}",
                        k["access_key_id"].as_str().unwrap_or_default(),
                        k["name"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Delete {
            access_key_id,
            conn,
        }) => {
            conn.client()?
                .delete(&format!("/v1/keys/{access_key_id}"))
                .await?;
            println!("deleted access key {access_key_id}");
            Ok(())
        }
        Command::Layer(LayerCommand::Publish {
            name,
            requirements,
            dir,
            description,
            python,
            conn,
        }) => {
            let client = conn.client()?;
            let archive = match (requirements, dir) {
                (Some(req), _) => {
                    let built = crate::layer::build_with_pip(&python, &req)?;
                    modelfn_registry::package::pack_dir(built.path())?
                }
                (None, Some(d)) => modelfn_registry::package::pack_dir(&d)
                    .with_context(|| format!("packing {}", d.display()))?,
                (None, None) => bail!("give --requirements FILE or --dir DIR"),
            };
            let out = client.publish_layer(&name, archive, &description).await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::layer_published(&out));
            }
            Ok(())
        }
        Command::Layer(LayerCommand::List { conn }) => {
            let out = conn.client()?.get_admin("/v1/layers").await?;
            if conn.json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", table::layers(&out["layers"]));
            }
            Ok(())
        }
        Command::Events(EventsCommand::Save {
            function,
            event,
            data,
            event_file,
            conn,
        }) => {
            let body = match (event_file, data) {
                (Some(f), _) => {
                    std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?
                }
                (None, Some(d)) => read_data(&d)?,
                (None, None) => bail!("give --data JSON or --event-file FILE"),
            };
            conn.client()?
                .put_admin(&format!("/v1/functions/{function}/events/{event}"), body)
                .await?;
            println!("saved test event {event} of {function}");
            Ok(())
        }
        Command::Events(EventsCommand::List { function, conn }) => {
            let out = conn
                .client()?
                .get_admin(&format!("/v1/functions/{function}/events"))
                .await?;
            for e in out["events"].as_array().cloned().unwrap_or_default() {
                println!("{}", e.as_str().unwrap_or_default());
            }
            Ok(())
        }
    }
}
