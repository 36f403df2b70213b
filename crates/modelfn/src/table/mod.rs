//! Human-readable tables of the admin API's answers, read as the server's types.

/// The answers the tables read: the server's own types, so that a field renamed on
/// the server is an error here, not a silent `-`.
pub use modelfn_control::plans::UsagePlan;
pub use modelfn_control::{AccessKey, DeployOutcome, FunctionInfo, LayerInfo};
use modelfn_core::duration::format_duration;
pub use modelfn_gateway::admin::apis::{ApiList, ApiSummary};
pub use modelfn_gateway::admin::keys::KeyUsage;
pub use modelfn_gateway::admin::urls::UrlInfo;
use modelfn_registry::LayerRecord;
use modelfn_telemetry::LogRecord;
use serde::Deserialize;

mod changes;
mod observe;
pub use observe::{cluster, cost, invocations};

/// `GET /v1/stats`.
#[derive(Debug, Deserialize)]
pub struct Stats {
    pub versions: Vec<modelfn_scheduler::metrics::VersionMetrics>,
}

/// A table of any rows (`modelfn top` draws its own).
pub fn render_rows(header: &[&str], rows: &[Vec<String>]) -> String {
    render(header, rows)
}

#[derive(Debug, Deserialize)]
pub struct Invocations {
    pub invocations: Vec<ListedRecord>,
    /// Nodes that did not answer (`--all-nodes`), with why.
    #[serde(default)]
    pub unanswered: Vec<serde_json::Value>,
}

/// A record as listed: with the node that served it when several nodes' are listed.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct ListedRecord {
    #[serde(flatten)]
    pub record: modelfn_telemetry::InvocationRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}
pub use changes::{
    alias_set, aliases, detail, model_moved, models, provisioned, provisioned_one, shadow, versions,
};

#[derive(Debug, Deserialize)]
pub struct Functions {
    pub functions: Vec<FunctionInfo>,
}

#[derive(Debug, Deserialize)]
pub struct Layers {
    pub layers: Vec<LayerRecord>,
}

#[derive(Debug, Deserialize)]
pub struct Keys {
    pub keys: Vec<AccessKey>,
}

#[derive(Debug, Deserialize)]
pub struct Plans {
    pub plans: Vec<UsagePlan>,
}

#[derive(Debug, Deserialize)]
pub struct LogLines {
    pub lines: Vec<LogRecord>,
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out += &line(r.clone());
    }
    out
}

/// An optional value, or `-`.
fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// A time in Unix milliseconds as UTC, to the second.
fn when(ms: i64) -> String {
    let t = modelfn_telemetry::time::rfc3339_ms(ms);
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

/// `modelfn list`.
pub fn functions(list: &Functions) -> String {
    if list.functions.is_empty() {
        return "no functions deployed\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .functions
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.version.to_string(),
                f.runtime.clone(),
                format!("{} MB", f.memory_mb),
                format!("{} ms", f.timeout_ms),
                opt(f.stats.as_ref().map(|s| s.state.as_str())),
                opt(f.stats.as_ref().map(|s| s.invocations)),
            ]
        })
        .collect();
    render(
        &[
            "NAME",
            "VERSION",
            "RUNTIME",
            "MEMORY",
            "TIMEOUT",
            "STATE",
            "INVOCATIONS",
        ],
        &rows,
    )
}

/// `modelfn describe`, `modelfn config`.
pub fn describe(f: &FunctionInfo) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        vec!["name".into(), f.name.clone()],
        vec!["version".into(), f.version.to_string()],
        vec!["runtime".into(), f.runtime.clone()],
        vec!["description".into(), f.description.clone()],
        vec!["memory".into(), format!("{} MB", f.memory_mb)],
        vec!["timeout".into(), format!("{} ms", f.timeout_ms)],
        vec![
            "code".into(),
            format!("sha256:{} ({} bytes)", f.code_sha256, f.code_size),
        ],
        vec![
            "unpacked".into(),
            format!(
                "{} with layers (limit {})",
                mb(f.total_unpacked_size),
                mb(f.unpacked_size_limit)
            ),
        ],
    ];
    if let Some(h) = &f.handler {
        rows.push(vec!["handler".into(), h.clone()]);
    }
    if !f.layers.is_empty() {
        let names: Vec<String> = f
            .layers
            .iter()
            .map(|l| format!("{}:{}", l.name, l.version))
            .collect();
        rows.push(vec!["layers".into(), names.join(", ")]);
    }
    if let Some(url) = f.url_auth {
        rows.push(vec!["url auth".into(), url.as_str().into()]);
    }
    if let Some(m) = &f.model {
        rows.push(vec!["model file".into(), m.file.clone()]);
        if let Some(src) = &m.source {
            rows.push(vec![
                "converted from".into(),
                format!("{} (sha256:{}) by {}", src.file, src.sha256, src.converter),
            ]);
        }
        rows.push(vec!["inputs".into(), m.inputs.join(", ")]);
        if !m.labels.is_empty() {
            rows.push(vec!["labels".into(), m.labels.join(", ")]);
        }
    }
    if let Some(sc) = &f.scaling {
        let show = |v: Option<String>, default: &str| v.unwrap_or_else(|| default.to_string());
        rows.push(vec![
            "reserved concurrency".into(),
            show(
                sc.reserved_concurrency.map(|v| v.to_string()),
                "none (the server's limit)",
            ),
        ]);
        rows.push(vec![
            "provisioned".into(),
            show(sc.provisioned_concurrency.map(|v| v.to_string()), "0"),
        ]);
        rows.push(vec![
            "keep-alive".into(),
            show(sc.keep_alive.map(format_duration), "5m"),
        ]);
        if f.model.is_some() {
            rows.push(vec![
                "max batch".into(),
                show(sc.max_batch.map(|v| v.to_string()), "256"),
            ]);
            rows.push(vec![
                "max delay".into(),
                show(sc.max_delay.map(format_duration), "0 (no waiting)"),
            ]);
        }
    }
    if let Some(why) = &f.not_served {
        rows.push(vec!["not served here".into(), why.clone()]);
    }
    if let Some(st) = &f.stats {
        rows.push(vec!["state".into(), st.state.as_str().into()]);
        rows.push(vec![
            "instances".into(),
            format!(
                "{} ({} provisioned)",
                st.instances, st.provisioned_instances
            ),
        ]);
        rows.push(vec!["invocations".into(), st.invocations.to_string()]);
        rows.push(vec!["errors".into(), st.errors.to_string()]);
        rows.push(vec!["throttles".into(), st.throttles.to_string()]);
        rows.push(vec![
            "cold starts".into(),
            if st.restores > 0 {
                format!(
                    "{} ({} restored from the snap-start template)",
                    st.cold_starts, st.restores
                )
            } else {
                st.cold_starts.to_string()
            },
        ]);
        rows.push(vec![
            "last init".into(),
            format!("{} ms", opt(st.last_init_duration_ms)),
        ]);
    }
    render(&["FIELD", "VALUE"], &rows)
}

/// `modelfn deploy`.
pub fn deployed(out: &DeployOutcome) -> String {
    let f = &out.function;
    format!(
        "{} {} version {} ({} runtime, {} MB, {} ms timeout)\n",
        if out.created { "deployed" } else { "unchanged" },
        f.name,
        f.version,
        f.runtime,
        f.memory_mb,
        f.timeout_ms
    )
}

/// `modelfn url create`.
pub fn url(u: &UrlInfo) -> String {
    match &u.qualifier {
        Some(q) => format!(
            "{}  (auth: {}, calls {}:{q})\n",
            u.url,
            u.auth.as_str(),
            u.function
        ),
        None => format!("{}  (auth: {})\n", u.url, u.auth.as_str()),
    }
}

/// `modelfn keys create`: the secrets, shown this once.
pub fn key_created(k: &AccessKey) -> String {
    format!(
        "access key id:     {}\nsecret access key: {}\napi key:           {}\n(shown this once: AWS SDKs sign with the id and secret as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; APIs and function URLs take the api key as x-api-key)\n",
        k.access_key_id,
        opt(k.secret_access_key.as_deref()),
        opt(k.api_key.as_deref()),
    )
}

/// `modelfn keys usage`.
pub fn key_usage(u: &KeyUsage) -> String {
    let rows: Vec<Vec<String>> = u
        .days
        .iter()
        .map(|(day, n)| vec![day.clone(), n.to_string()])
        .collect();
    render(&["DAY", "REQUESTS"], &rows)
}

/// `modelfn layer list`.
pub fn layers(list: &Layers) -> String {
    if list.layers.is_empty() {
        return "no layers published\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .layers
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.version.to_string(),
                mb(l.compressed_size),
                mb(l.unpacked_size),
                l.description.clone(),
            ]
        })
        .collect();
    render(
        &["NAME", "VERSION", "COMPRESSED", "UNPACKED", "DESCRIPTION"],
        &rows,
    )
}

/// `modelfn layer publish`.
pub fn layer_published(l: &LayerInfo) -> String {
    format!(
        "published layer {} version {}: {} compressed (limit {}), {} unpacked (limit {})\n",
        l.layer.name,
        l.layer.version,
        mb(l.layer.compressed_size),
        mb(l.compressed_limit),
        mb(l.layer.unpacked_size),
        mb(l.unpacked_limit),
    )
}

/// An API: its stage URLs and routes.
pub fn api(a: &ApiSummary) -> String {
    let mut out = format!("API {}\n", a.name);
    for st in &a.stages {
        out += &format!("  stage {}: {}\n", st.name, st.url);
    }
    let rows: Vec<Vec<String>> = a
        .routes
        .iter()
        .map(|r| {
            vec![
                r.method.clone(),
                r.path.clone(),
                r.function.clone(),
                r.integration.clone(),
                r.auth.clone(),
            ]
        })
        .collect();
    out + &render(
        &["METHOD", "PATH", "FUNCTION", "INTEGRATION", "AUTH"],
        &rows,
    )
}

/// `modelfn api list`.
pub fn apis(list: &ApiList) -> String {
    if list.apis.is_empty() {
        return "no APIs\n".into();
    }
    list.apis.iter().map(api).collect()
}

/// `modelfn keys list`.
pub fn keys(list: &Keys) -> String {
    let rows: Vec<Vec<String>> = list
        .keys
        .iter()
        .map(|k| {
            vec![
                k.access_key_id.clone(),
                k.name.clone(),
                if k.manage { "invoke, manage" } else { "invoke" }.into(),
                when(k.created_at_ms),
            ]
        })
        .collect();
    render(&["ACCESS KEY ID", "NAME", "MAY", "CREATED"], &rows)
}

/// `modelfn plans list`.
pub fn plans(list: &Plans) -> String {
    let rows: Vec<Vec<String>> = list
        .plans
        .iter()
        .map(|p| {
            let quota = match p.quota {
                Some(q) => format!("{q}/{}", p.period.as_str()),
                None => "-".into(),
            };
            vec![
                p.name.clone(),
                p.rate.to_string(),
                p.burst.to_string(),
                quota,
                p.targets.join(", "),
                p.keys.join(", "),
            ]
        })
        .collect();
    render(
        &["NAME", "RATE/S", "BURST", "QUOTA", "TARGETS", "KEYS"],
        &rows,
    )
}

/// Text from the server (a function's output, its error messages) made safe for a
/// terminal: control characters other than newline and tab (escape sequences that could
/// rewrite the screen or the title) are shown as `\u{..}` instead of acting.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn escapes_cannot_reach_the_terminal() {
        assert_eq!(
            super::printable("a\x1b]0;pwned\x07b\tc\nd\r"),
            "a\\u{1b}]0;pwned\\u{7}b\tc\nd\\u{d}"
        );
    }
}
