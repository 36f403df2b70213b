//! Checks of a manifest's single values: a Python handler, an environment variable's
//! name, a layer reference, a path inside the package; and TOML errors on one line.

use crate::name::FunctionName;

pub(crate) fn valid_python_handler(h: &str) -> bool {
    let ident = |s: &str| {
        !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match h.rsplit_once('.') {
        Some((module, func)) => ident(func) && module.split(['.', '/']).all(ident),
        None => false,
    }
}

/// Environment variables the platform sets itself, which a manifest may not override.
pub const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_EXECUTION_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

pub(crate) fn check_env_name(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!("environment variable name {key:?} must be letters, digits and '_', not starting with a digit"));
    }
    if key.starts_with("AWS_LAMBDA_") || key.starts_with("MODELFN_") || RESERVED_ENV.contains(&key)
    {
        return Err(format!(
            "environment variable {key} is reserved: modelfn sets it"
        ));
    }
    Ok(())
}

/// `"name"` or `"name:version"` → (name, version).
pub fn parse_layer_ref(s: &str) -> Result<(FunctionName, Option<u64>), String> {
    let (name, version) = match s.split_once(':') {
        Some((n, v)) => {
            let v: u64 = v.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                format!("layer {s:?}: the version after ':' must be a number from 1")
            })?;
            (n, Some(v))
        }
        None => (s, None),
    };
    let name = FunctionName::parse(name).map_err(|e| format!("layer {s:?}: {}", e.reason))?;
    Ok((name, version))
}

/// A path inside the package: relative, no `..`, not empty.
pub fn check_relative_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("the path is empty");
    }
    if p.starts_with('/') || p.starts_with('\\') {
        return Err("the path must be relative to the package root");
    }
    if p.split(['/', '\\']).any(|c| c == "..") {
        return Err("the path must stay inside the package (no '..')");
    }
    Ok(())
}

pub(crate) fn first_duplicate(items: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .find(|s| !seen.insert(s.as_str()))
        .map(String::as_str)
}

/// TOML errors span several lines (a source excerpt); keep the position and the message
/// on one: `line 3, column 1: unknown field ...`.
pub(crate) fn one_line(msg: &str) -> String {
    let is_excerpt = |l: &str| {
        let t = l.trim_start();
        t.starts_with('|')
            || t.split_once(" |")
                .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut parts = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_excerpt(l));
    let head = parts
        .next()
        .unwrap_or("")
        .trim_start_matches("TOML parse error at ")
        .to_string();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        head
    } else {
        format!("{head}: {}", rest.join("; "))
    }
}

/// `snap_start` and `snap_start_prime` fit the function: a python3 function on modelfn's
/// client (awslambdaric cannot fork from a template), and a prime event inside the package.
pub(crate) fn check_snap_start(m: &super::Manifest) -> Result<(), String> {
    use super::{RuntimeClient, RuntimeKind};
    if m.snap_start == Some(true) {
        if m.runtime != RuntimeKind::Python3 {
            return Err(format!(
                "snap_start is for runtime \"python3\" (this function is runtime \"{}\")",
                m.runtime.as_str()
            ));
        }
        if m.runtime_client == Some(RuntimeClient::Awslambdaric) {
            return Err("snap_start needs modelfn's own Python client: runtime_client = \"awslambdaric\" cannot fork from a template (remove runtime_client, or set snap_start = false)".into());
        }
    }
    if let Some(prime) = &m.snap_start_prime {
        if !m.snap_start_enabled() {
            return Err("snap_start_prime primes a snap-start template, and this function has none (snap start is for python3 functions on modelfn's client, unless snap_start = false)".into());
        }
        check_relative_path(prime)
            .map_err(|reason| format!("snap_start_prime = {prime:?}: {reason}"))?;
    }
    Ok(())
}
