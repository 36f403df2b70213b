//! Server configuration as one typed struct, in layers: defaults, then a TOML file
//! (`--config`), then `MODELFN_*` environment variables, then flags (clap reads the last
//! two, flags winning). Checked once at start; a bad value exits with a clear message.

use anyhow::{bail, Context, Result};
use clap::Args;
use modelfn_core::DoorAuth;
use modelfn_runtime_process::UidRange;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod sections;
use sections::{async_from_file, check_cluster, otlp_from_env, traces_from_file};

/// Flags (and their environment variables) of `serve` and `demo`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "MODELFN_LISTEN")]
    pub listen: Option<String>,
    /// Where metadata, artifacts and the admin token live.
    #[arg(long, env = "MODELFN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where packages, layers and models are stored: `s3://bucket/prefix` (credentials and
    /// endpoint from the `AWS_*` variables); default: the data directory.
    #[arg(long, env = "MODELFN_ARTIFACTS")]
    pub artifacts: Option<String>,
    /// Where metadata is kept: `postgres://user:password@host/db`, shared by every node of a
    /// cluster; default: SQLite in the data directory.
    #[arg(long, env = "MODELFN_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Where the other nodes of a cluster reach this one (`host:port`; in a pod, its IP);
    /// default: the listen address, or the host name when listening on every interface.
    #[arg(long, env = "MODELFN_ADVERTISE")]
    pub advertise: Option<String>,
    /// A TOML configuration file.
    #[arg(long, env = "MODELFN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Path to libonnxruntime.so (default: found or installed automatically).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_library: Option<PathBuf>,
    /// Stop when standard input closes (for tests and supervisors that own the process).
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
}

/// The configuration file's fields; every one is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    artifacts: Option<String>,
    database: Option<String>,
    advertise: Option<String>,
    max_invoke_body_bytes: Option<usize>,
    map_max_input_mb: Option<usize>,
    max_object_mb: Option<u64>,
    max_package_mb: Option<u64>,
    max_unpacked_mb: Option<u64>,
    max_layer_mb: Option<u64>,
    max_concurrency: Option<usize>,
    queue_depth: Option<usize>,
    starts_per_core: Option<usize>,
    aws_allow_unsigned: Option<bool>,
    metrics: Option<bool>,
    records: Option<bool>,
    records_retention: Option<String>,
    records_max_mb: Option<u64>,
    traces: Option<bool>,
    traces_keep: Option<usize>,
    traces_per_second: Option<u32>,
    traces_ratio: Option<f64>,
    otlp_endpoint: Option<String>,
    async_max_payload_kb: Option<usize>,
    async_max_attempts: Option<u32>,
    async_max_age: Option<String>,
    async_backoff: Option<String>,
    async_max_in_flight: Option<usize>,
    async_dead_letter_on_delete: Option<bool>,
    async_lease: Option<String>,
    function_python: Option<String>,
    function_uid_base: Option<u32>,
    max_connections: Option<usize>,
    invoke_auth: Option<DoorAuth>,
    code_functions: Option<bool>,
    listen_backlog: Option<u32>,
    header_timeout_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    function_uid_count: Option<u32>,
    ort_library: Option<PathBuf>,
    install_onnxruntime: Option<bool>,
    log: Option<String>,
}

/// The resolved server configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `s3://bucket/prefix` for blobs; `None`: the data directory.
    pub artifacts: Option<String>,
    /// `postgres://...` for metadata; `None`: SQLite in the data directory.
    pub database: Option<String>,
    /// `host:port` where other nodes reach this one.
    pub advertise: Option<String>,
    /// The admin token, the same on every node (`MODELFN_ADMIN_TOKEN`); default: made on
    /// first start and kept in the data directory.
    pub admin_token: Option<String>,
    pub max_invoke_body_bytes: usize,
    /// Largest body of a map (`map_max_input_mb`, 64 by default).
    pub max_map_input_bytes: usize,
    /// Largest object in a bucket (`max_object_mb`, 256 by default).
    pub max_object_bytes: u64,
    pub max_package_bytes: u64,
    pub max_unpacked_bytes: u64,
    /// Largest layer, compressed and unpacked.
    pub max_layer_bytes: u64,
    /// The Python interpreter of `python3` functions (default: `python3` on PATH).
    pub function_python: Option<String>,
    /// The key-encryption key for access-key secrets, hex (`MODELFN_KEK`; default: a
    /// 0600 file in the data directory).
    pub kek: Option<String>,
    /// A token for `GET /metrics` besides the admin token (`MODELFN_METRICS_TOKEN`), so a
    /// Prometheus server need not hold the admin token.
    pub metrics_token: Option<String>,
    /// The uids functions' sandboxes run as, one per function (when modelfn runs as root).
    pub function_uids: UidRange,
    /// What the native, OIP and KServe doors require (default: `none` on a loopback
    /// listener, `key` on any other).
    pub invoke_auth: Option<DoorAuth>,
    /// Whether code functions are served (they need bubblewrap); `false` serves ONNX
    /// functions only.
    pub code_functions: bool,
    /// Open client connections at most (default: below the open-file limit).
    pub max_connections: Option<usize>,
    /// The listen backlog (default: the system's somaxconn).
    pub listen_backlog: Option<u32>,
    /// A connection with no request in flight for this long is closed: the time a client
    /// has to send a request's headers (the first, or the next when kept alive).
    pub header_timeout: std::time::Duration,
    /// After SIGTERM, requests in flight get this long; then connections are cut.
    pub shutdown_timeout: std::time::Duration,
    /// Invocations running at once on this server (all functions).
    pub max_concurrency: usize,
    /// Invocations waiting per function before 429.
    pub queue_depth: usize,
    /// Process instances starting at once, per core (`starts_per_core`, 2).
    pub starts_per_core: usize,
    /// Accept unsigned requests on the AWS protocols (local use only).
    pub aws_allow_unsigned: bool,
    /// Count invocations for `/metrics` (`metrics = false` only to measure the cost).
    pub metrics: bool,
    /// Keep a record of every invocation (`records = false` only to measure the cost).
    pub records: bool,
    /// How long and how much of them is kept.
    pub records_retention: modelfn_telemetry::Retention,
    /// Which invocations are traced and where spans go (`None`: `traces = false`).
    pub traces: Option<modelfn_telemetry::TraceConfig>,
    /// Asynchronous invocations: payload limit, attempts, age, backoff, concurrency.
    pub async_events: modelfn_gateway::events::AsyncSettings,
    pub ort_library: Option<PathBuf>,
    /// Whether a missing ONNX Runtime may be installed with pip.
    pub install_onnxruntime: bool,
    /// A tracing filter (`RUST_LOG` syntax).
    pub log: String,
    pub exit_with_stdin: bool,
}

/// `$MODELFN_DATA_DIR`, else `$XDG_DATA_HOME/modelfn`, else `~/.local/share/modelfn`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("modelfn");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/modelfn"),
        None => PathBuf::from("modelfn-data"),
    }
}

impl ServeConfig {
    fn defaults() -> ServeConfig {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: default_data_dir(),
            artifacts: None,
            database: None,
            advertise: None,
            admin_token: std::env::var("MODELFN_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
            max_invoke_body_bytes: 6 * 1024 * 1024,
            max_map_input_bytes: 64 * 1024 * 1024,
            max_object_bytes: 256 * 1024 * 1024,
            max_package_bytes: 50 * 1024 * 1024,
            max_unpacked_bytes: 250 * 1024 * 1024,
            max_layer_bytes: 250 * 1024 * 1024,
            function_python: std::env::var("MODELFN_PYTHON").ok(),
            function_uids: UidRange::default(),
            kek: std::env::var("MODELFN_KEK").ok().filter(|k| !k.is_empty()),
            metrics_token: std::env::var("MODELFN_METRICS_TOKEN")
                .ok()
                .filter(|k| !k.is_empty()),
            max_connections: None,
            invoke_auth: None,
            code_functions: true,
            listen_backlog: None,
            header_timeout: std::time::Duration::from_secs(10),
            shutdown_timeout: std::time::Duration::from_secs(10),
            max_concurrency: 10_000,
            queue_depth: 10_000,
            starts_per_core: 2,
            aws_allow_unsigned: false,
            metrics: true,
            records: true,
            records_retention: modelfn_telemetry::Retention::default(),
            async_events: Default::default(),
            traces: Some(modelfn_telemetry::TraceConfig {
                otlp: otlp_from_env(),
                ..Default::default()
            }),
            ort_library: None,
            install_onnxruntime: true,
            log: "info".into(),
            exit_with_stdin: false,
        }
    }

    /// Resolves the layers for these flags.
    pub fn load(args: &ServeArgs) -> Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        Self::resolve(file, args)
    }

    fn resolve(file: Option<FileConfig>, args: &ServeArgs) -> Result<ServeConfig> {
        let mut c = Self::defaults();
        let mut listen = None;
        if let Some(f) = file {
            traces_from_file(&mut c, &f)?;
            async_from_file(&mut c.async_events, &f)?;
            listen = f.listen;
            if let Some(v) = f.data_dir {
                c.data_dir = v;
            }
            c.artifacts = f.artifacts;
            c.database = f.database;
            c.advertise = f.advertise;
            if let Some(v) = f.max_invoke_body_bytes {
                c.max_invoke_body_bytes = v;
            }
            if let Some(v) = f.map_max_input_mb {
                if !(1..=4096).contains(&v) {
                    bail!("map_max_input_mb = {v} is not between 1 and 4096");
                }
                c.max_map_input_bytes = v * 1024 * 1024;
            }
            if let Some(v) = f.max_object_mb {
                if !(1..=65536).contains(&v) {
                    bail!("max_object_mb = {v} is not between 1 and 65536");
                }
                c.max_object_bytes = v * 1024 * 1024;
            }
            if let Some(v) = f.max_package_mb {
                c.max_package_bytes = v * 1024 * 1024;
            }
            if let Some(v) = f.max_unpacked_mb {
                c.max_unpacked_bytes = v * 1024 * 1024;
            }
            if let Some(v) = f.max_layer_mb {
                c.max_layer_bytes = v * 1024 * 1024;
            }
            if f.function_python.is_some() {
                c.function_python = f.function_python;
            }
            if let Some(v) = f.function_uid_base {
                c.function_uids.base = v;
            }
            if let Some(v) = f.function_uid_count {
                c.function_uids.count = v;
            }
            if let Some(v) = f.code_functions {
                c.code_functions = v;
            }
            if f.invoke_auth.is_some() {
                c.invoke_auth = f.invoke_auth;
            }
            if f.max_connections.is_some() {
                c.max_connections = f.max_connections;
            }
            if f.listen_backlog.is_some() {
                c.listen_backlog = f.listen_backlog;
            }
            let ms = std::time::Duration::from_millis;
            if let Some(v) = f.header_timeout_ms {
                c.header_timeout = ms(v);
            }
            if let Some(v) = f.shutdown_timeout_ms {
                c.shutdown_timeout = ms(v);
            }
            if let Some(v) = f.max_concurrency {
                c.max_concurrency = v;
            }
            if let Some(v) = f.starts_per_core {
                if !(1..=64).contains(&v) {
                    bail!("starts_per_core = {v} is not between 1 and 64");
                }
                c.starts_per_core = v;
            }
            if let Some(v) = f.queue_depth {
                c.queue_depth = v;
            }
            if let Some(v) = f.aws_allow_unsigned {
                c.aws_allow_unsigned = v;
            }
            if let Some(v) = f.metrics {
                c.metrics = v;
            }
            if let Some(v) = f.records {
                c.records = v;
            }
            if let Some(v) = &f.records_retention {
                c.records_retention.max_age = modelfn_core::duration::parse_duration(v)
                    .with_context(|| {
                        format!("records_retention = {v:?} is not a duration like 12h or 7d")
                    })?;
            }
            if let Some(v) = f.records_max_mb {
                c.records_retention.max_bytes = v.saturating_mul(1024 * 1024);
            }
            c.ort_library = f.ort_library;
            if let Some(v) = f.install_onnxruntime {
                c.install_onnxruntime = v;
            }
            if let Some(v) = f.log {
                c.log = v;
            }
        }
        if let Some(v) = &args.listen {
            listen = Some(v.clone());
        }
        if let Some(v) = &args.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &args.artifacts {
            c.artifacts = Some(v.clone());
        }
        if let Some(v) = &args.database {
            c.database = Some(v.clone());
        }
        if let Some(v) = &args.advertise {
            c.advertise = Some(v.clone());
        }
        check_cluster(&c)?;
        if let Some(v) = &args.ort_library {
            c.ort_library = Some(v.clone());
        }
        c.exit_with_stdin = args.exit_with_stdin;
        if let Some(l) = listen {
            c.listen = l
                .parse()
                .with_context(|| format!("listen = {l:?} is not an address like 127.0.0.1:8080"))?;
        }
        if c.max_connections == Some(0) || c.listen_backlog == Some(0) {
            bail!("max_connections and listen_backlog must be more than 0");
        }
        if c.header_timeout.is_zero() {
            bail!("header_timeout_ms must be more than 0");
        }
        if c.max_concurrency == 0 {
            bail!("max_concurrency must be more than 0");
        }
        if c.max_invoke_body_bytes == 0 {
            bail!("max_invoke_body_bytes must be more than 0");
        }
        if c.max_package_bytes == 0 || c.max_unpacked_bytes == 0 {
            bail!("max_package_mb and max_unpacked_mb must be more than 0");
        }
        Ok(c)
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in the configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\nmax_package_mb = 10\n").unwrap();
        let c = ServeConfig::resolve(Some(file), &ServeArgs::default()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_package_bytes, 10 * 1024 * 1024);
        assert_eq!(c.max_invoke_body_bytes, 6 * 1024 * 1024);
        let file: FileConfig = toml::from_str("listen = \"127.0.0.1:9000\"").unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        assert_eq!(
            ServeConfig::resolve(Some(file), &args)
                .unwrap()
                .listen
                .port(),
            0
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = toml::from_str::<FileConfig>("listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `listn`"), "{e}");
        let args = ServeArgs {
            listen: Some("localhost".into()),
            ..Default::default()
        };
        let e = ServeConfig::resolve(None, &args).unwrap_err().to_string();
        assert!(e.contains("\"localhost\" is not an address"), "{e}");
        let file: FileConfig = toml::from_str("traces_ratio = 2.0").unwrap();
        let e = ServeConfig::resolve(Some(file), &ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("traces_ratio = 2 is not between 0 and 1"), "{e}");
        let file: FileConfig = toml::from_str("otlp_endpoint = \"http://127.0.0.1:4318\"").unwrap();
        let c = ServeConfig::resolve(Some(file), &ServeArgs::default()).unwrap();
        let otlp = c.traces.and_then(|t| t.otlp).and_then(|o| o.endpoint);
        assert_eq!(otlp.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        // The cluster's settings are checked, and a password never shows in the reason.
        for (key, value, says) in [
            (
                "database",
                "mysql://u:hunter2@db/m",
                "is not a PostgreSQL URL",
            ),
            ("advertise", "10.0.3.7", "is not host:port"),
            ("artifacts", "s3://Bad", "the bucket must be"),
            ("async_lease", "1s", "under 3s"),
        ] {
            let file: FileConfig = toml::from_str(&format!("{key} = {value:?}")).unwrap();
            let e = format!(
                "{:#}",
                ServeConfig::resolve(Some(file), &ServeArgs::default()).unwrap_err()
            );
            assert!(e.contains(says) && !e.contains("hunter2"), "{key}: {e}");
        }
        let file: FileConfig = toml::from_str(
            "database = \"postgres://u:p@db:5432/m\"\nadvertise = \"10.0.3.7:8080\"",
        )
        .unwrap();
        let c = ServeConfig::resolve(Some(file), &ServeArgs::default()).unwrap();
        assert_eq!(c.advertise.as_deref(), Some("10.0.3.7:8080"));
    }
}
