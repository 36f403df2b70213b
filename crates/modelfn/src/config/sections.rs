//! The parts of the configuration with their own rules: telemetry (`traces*`, OTLP from
//! the file or the standard `OTEL_*` variables), the asynchronous queue (`async_*`), and
//! the cluster's shared services (`database`, `artifacts`, `MODELFN_ADMIN_TOKEN`).

use super::{FileConfig, ServeConfig};
use anyhow::{bail, Context, Result};

/// Spans go to an OTLP collector when the standard variables name one.
pub(super) fn otlp_from_env() -> Option<modelfn_telemetry::OtlpConfig> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT")).then(|| {
        modelfn_telemetry::OtlpConfig {
            endpoint: None,
            service_name: service_name(),
        }
    })
}

fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "modelfn".into())
}

/// `async_*` of the file.
pub(super) fn async_from_file(
    a: &mut modelfn_gateway::events::AsyncSettings,
    f: &FileConfig,
) -> Result<()> {
    let duration = |key: &str, v: &str| {
        modelfn_core::duration::parse_duration(v)
            .with_context(|| format!("{key} = {v:?} is not a duration like 30s, 10m or 6h"))
    };
    if let Some(kb) = f.async_max_payload_kb {
        if !(1..=6 * 1024).contains(&kb) {
            bail!("async_max_payload_kb = {kb} is not between 1 and 6144 (6 MB)");
        }
        a.max_payload_bytes = kb * 1024;
    }
    if let Some(n) = f.async_max_attempts {
        if !(1..=100).contains(&n) {
            bail!("async_max_attempts = {n} is not between 1 and 100");
        }
        a.max_attempts = n;
    }
    if let Some(v) = &f.async_max_age {
        a.max_age = duration("async_max_age", v)?;
    }
    if let Some(v) = &f.async_backoff {
        a.backoff = duration("async_backoff", v)?;
    }
    if let Some(n) = f.async_max_in_flight {
        if n == 0 {
            bail!("async_max_in_flight must be more than 0");
        }
        a.max_in_flight = n;
    }
    if let Some(v) = &f.async_lease {
        a.lease = duration("async_lease", v)?;
        if a.lease < std::time::Duration::from_secs(3) {
            bail!("async_lease = {v:?} is under 3s: leases are renewed every third of it");
        }
    }
    if let Some(v) = f.async_dead_letter_on_delete {
        a.dead_letter_on_delete = v;
    }
    Ok(())
}

/// `traces*` and `otlp_endpoint` of the file.
pub(super) fn traces_from_file(c: &mut ServeConfig, f: &FileConfig) -> Result<()> {
    if f.traces == Some(false) {
        c.traces = None;
        return Ok(());
    }
    let t = c.traces.get_or_insert_with(Default::default);
    if let Some(v) = f.traces_keep {
        t.keep = v.clamp(1, 100_000);
    }
    if let Some(v) = f.traces_per_second {
        t.per_second = v;
    }
    if let Some(v) = f.traces_ratio {
        if !(0.0..=1.0).contains(&v) {
            bail!("traces_ratio = {v} is not between 0 and 1");
        }
        t.ratio = v;
    }
    if let Some(e) = &f.otlp_endpoint {
        let url: reqwest::Url = e.parse().with_context(|| {
            format!("otlp_endpoint = {e:?} is not a URL like http://127.0.0.1:4318")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("otlp_endpoint = {e:?}: OTLP/HTTP needs an http or https URL");
        }
        // A collector's base URL gets the traces path, as OTEL_EXPORTER_OTLP_ENDPOINT does.
        let endpoint = if url.path() == "/" {
            format!("{}v1/traces", url)
        } else {
            url.to_string()
        };
        t.otlp = Some(modelfn_telemetry::OtlpConfig {
            endpoint: Some(endpoint),
            service_name: service_name(),
        });
    }
    Ok(())
}

/// Checks the shared services' settings: a PostgreSQL URL for `database`, an
/// `s3://bucket/prefix` for `artifacts`, and an admin token long enough to guess at.
pub(super) fn check_cluster(c: &ServeConfig) -> Result<()> {
    if let Some(url) = &c.database {
        let scheme = url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "postgres" | "postgresql") || !url.contains("://") {
            bail!(
                "database = {:?} is not a PostgreSQL URL like postgres://user:password@host:5432/modelfn \
                 (leave it out for the embedded SQLite in the data directory)",
                modelfn_registry::sql::redact(url)
            );
        }
    }
    if let Some(url) = &c.artifacts {
        modelfn_registry::s3::parse_s3_url(url)?;
    }
    if let Some(a) = &c.advertise {
        let port = a.rsplit_once(':').and_then(|(host, port)| {
            (!host.is_empty() && !host.contains('/')).then(|| port.parse::<u16>().ok())?
        });
        if port.is_none() {
            bail!("advertise = {a:?} is not host:port (like 10.0.3.7:8080)");
        }
    }
    if let Some(t) = &c.admin_token {
        if t.len() < 32 || !t.chars().all(|ch| ch.is_ascii_graphic()) {
            bail!("MODELFN_ADMIN_TOKEN must be at least 32 printable characters without spaces (try: openssl rand -hex 32)");
        }
    }
    Ok(())
}
