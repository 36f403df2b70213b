//! The API definition file and its compiled form.
//!
//! ```toml
//! name = "calc"
//! [cors]
//! allow_origins = ["*"]
//! [[stages]]
//! name = "PRD"
//! variables = { greeting = "hi" }
//! [[routes]]
//! method = "GET"                 # or ANY
//! path = "/addfive"              # segments may be {param} or a final {proxy+}
//! function = "addfive"
//! integration = "mapping"        # "proxy" (default) or "mapping"
//! request_template = '{"num": "$input.params(\'num\')"}'
//! ```

use super::template::{Template, TemplateError};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    cors: Option<Cors>,
    stages: Vec<StageDef>,
    routes: Vec<RouteDef>,
}

/// CORS settings of an API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub max_age_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageDef {
    name: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDef {
    method: String,
    path: String,
    function: String,
    #[serde(default)]
    integration: Option<String>,
    #[serde(default)]
    payload_version: Option<String>,
    #[serde(default)]
    request_template: Option<String>,
    #[serde(default)]
    response_template: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
}

/// How a route reaches its function.
#[derive(Debug, Clone, PartialEq)]
pub enum Integration {
    /// The function receives the request as a proxy event of this payload version.
    Proxy { v2: bool },
    /// A request template builds the event; an optional response template shapes the answer.
    Mapping {
        request: Template,
        response: Option<Template>,
    },
}

/// A path segment of a route.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path.
    Greedy(String),
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub segments: Vec<Segment>,
    /// The function as written: `name`, `name:3` or `name:alias`.
    pub function: String,
    /// What it names, resolved at every call.
    pub target: modelfn_core::FunctionRef,
    pub integration: Integration,
    pub require_key: bool,
    pub timeout_ms: u64,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub variables: BTreeMap<String, String>,
}

/// A compiled API.
#[derive(Debug, Clone)]
pub struct Api {
    pub name: String,
    pub description: String,
    pub cors: Option<Cors>,
    pub stages: Vec<Stage>,
    pub routes: Vec<Route>,
}

/// Why a definition was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError(pub String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// API Gateway's defaults: a 29 s integration timeout and a 10 MB payload.
pub const DEFAULT_TIMEOUT_MS: u64 = 29_000;
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn template(route: usize, which: &str, src: &str) -> Result<Template, ApiError> {
    Template::compile(src)
        .map_err(|e: TemplateError| ApiError(format!("routes[{route}].{which}: {e}")))
}

impl Api {
    /// Parses, checks and compiles a definition.
    pub fn compile(text: &str) -> Result<Api, ApiError> {
        let f: File = toml::from_str(text).map_err(|e| {
            ApiError(
                e.to_string()
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('|') && !l.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        if !valid_name(&f.name) {
            return Err(ApiError(format!(
                "name = {:?}: use 1-64 of letters, digits, '-' and '_'",
                f.name
            )));
        }
        if f.stages.is_empty() {
            return Err(ApiError("an API needs at least one [[stages]]".into()));
        }
        let mut stages = Vec::new();
        for s in f.stages {
            if !valid_name(&s.name) {
                return Err(ApiError(format!(
                    "stage name {:?}: use letters, digits, '-' and '_'",
                    s.name
                )));
            }
            if stages.iter().any(|x: &Stage| x.name == s.name) {
                return Err(ApiError(format!("stage {:?} is defined twice", s.name)));
            }
            stages.push(Stage {
                name: s.name,
                variables: s.variables,
            });
        }
        let mut routes = Vec::new();
        for (i, r) in f.routes.into_iter().enumerate() {
            let method = r.method.to_ascii_uppercase();
            if ![
                "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
            ]
            .contains(&method.as_str())
            {
                return Err(ApiError(format!(
                    "routes[{i}].method = {:?} is not an HTTP method or ANY",
                    r.method
                )));
            }
            if !r.path.starts_with('/') {
                return Err(ApiError(format!(
                    "routes[{i}].path = {:?} must start with '/'",
                    r.path
                )));
            }
            let parts: Vec<&str> = r.path.split('/').filter(|s| !s.is_empty()).collect();
            let mut segments = Vec::new();
            for (j, seg) in parts.iter().enumerate() {
                let s = if let Some(inner) = seg.strip_prefix('{').and_then(|x| x.strip_suffix('}'))
                {
                    match inner.strip_suffix('+') {
                        Some(name) if j + 1 == parts.len() => Segment::Greedy(name.to_string()),
                        Some(_) => {
                            return Err(ApiError(format!(
                                "routes[{i}].path: a {{name+}} segment must come last"
                            )))
                        }
                        None => Segment::Param(inner.to_string()),
                    }
                } else {
                    Segment::Literal(seg.to_string())
                };
                segments.push(s);
            }
            let integration = match r.integration.as_deref().unwrap_or("proxy") {
                "proxy" => {
                    if r.request_template.is_some() || r.response_template.is_some() {
                        return Err(ApiError(format!(
                            "routes[{i}]: templates need integration = \"mapping\""
                        )));
                    }
                    let v2 = match r.payload_version.as_deref().unwrap_or("1.0") {
                        "1.0" => false,
                        "2.0" => true,
                        other => {
                            return Err(ApiError(format!(
                                "routes[{i}].payload_version = {other:?}: use \"1.0\" or \"2.0\""
                            )))
                        }
                    };
                    Integration::Proxy { v2 }
                }
                "mapping" => {
                    let src = r.request_template.as_deref().unwrap_or("$input.json('$')");
                    Integration::Mapping {
                        request: template(i, "request_template", src)?,
                        response: r
                            .response_template
                            .as_deref()
                            .map(|t| template(i, "response_template", t))
                            .transpose()?,
                    }
                }
                other => {
                    return Err(ApiError(format!(
                        "routes[{i}].integration = {other:?}: use \"proxy\" or \"mapping\""
                    )))
                }
            };
            let require_key = match r.auth.as_deref().unwrap_or("none") {
                "none" => false,
                "key" => true,
                other => {
                    return Err(ApiError(format!(
                        "routes[{i}].auth = {other:?}: use \"none\" or \"key\""
                    )))
                }
            };
            let (name, qualifier) = match r.function.split_once(':') {
                Some((n, q)) => (n, Some(q)),
                None => (r.function.as_str(), None),
            };
            if modelfn_core::FunctionName::parse(name).is_err() || qualifier == Some("") {
                return Err(ApiError(format!(
                    "routes[{i}].function = {:?} is not a function name (NAME, NAME:VERSION or NAME:ALIAS)",
                    r.function
                )));
            }
            let target = modelfn_core::FunctionRef::new(name, qualifier);
            routes.push(Route {
                method,
                path: r.path,
                segments,
                function: r.function,
                target,
                integration,
                require_key,
                timeout_ms: r.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
                max_body_bytes: r.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            });
        }
        Ok(Api {
            name: f.name,
            description: f.description,
            cors: f.cors,
            stages,
            routes,
        })
    }

    /// The route for `method` and `path`, with its path parameters. Literal segments win
    /// over parameters, and parameters over greedy ones.
    pub fn route(&self, method: &str, path: &str) -> Option<(&Route, BTreeMap<String, String>)> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(usize, &Route, BTreeMap<String, String>)> = None;
        for r in &self.routes {
            if r.method != "ANY" && r.method != method {
                continue;
            }
            let Some((score, params)) = matches(&r.segments, &parts) else {
                continue;
            };
            let score = score * 2 + usize::from(r.method != "ANY");
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, r, params));
            }
        }
        best.map(|(_, r, p)| (r, p))
    }
}

fn matches(segs: &[Segment], parts: &[&str]) -> Option<(usize, BTreeMap<String, String>)> {
    let mut params = BTreeMap::new();
    let mut score = 0;
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Segment::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                params.insert(name.clone(), parts[i..].join("/"));
                return Some((score, params));
            }
            Segment::Literal(l) => {
                if parts.get(i) != Some(&l.as_str()) {
                    return None;
                }
                score += 3;
            }
            Segment::Param(name) => {
                params.insert(name.clone(), (*parts.get(i)?).to_string());
                score += 2;
            }
        }
    }
    (segs.len() == parts.len()).then_some((score, params))
}
