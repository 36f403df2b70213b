//! Human-readable tables for `list` and `describe`.

use serde_json::Value;

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

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other @ (Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => {
            other.to_string()
        }
    }
}

pub fn functions(list: &Value) -> String {
    let empty = vec![];
    let rows: Vec<Vec<String>> = list
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|f| {
            vec![
                s(&f["name"]),
                s(&f["version"]),
                s(&f["runtime"]),
                format!("{} MB", s(&f["memory_mb"])),
                format!("{} ms", s(&f["timeout_ms"])),
                s(&f["stats"]["state"]),
                s(&f["stats"]["invocations"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no functions deployed\n".into();
    }
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

pub fn describe(f: &Value) -> String {
    let mut rows = vec![
        vec!["name".into(), s(&f["name"])],
        vec!["version".into(), s(&f["version"])],
        vec!["runtime".into(), s(&f["runtime"])],
        vec!["description".into(), s(&f["description"])],
        vec!["memory".into(), format!("{} MB", s(&f["memory_mb"]))],
        vec!["timeout".into(), format!("{} ms", s(&f["timeout_ms"]))],
        vec![
            "code".into(),
            format!(
                "sha256:{} ({} bytes)",
                s(&f["code_sha256"]),
                s(&f["code_size"])
            ),
        ],
        vec![
            "unpacked".into(),
            format!(
                "{} with layers (limit {})",
                mb(&f["total_unpacked_size"]),
                mb(&f["unpacked_size_limit"])
            ),
        ],
    ];
    if let Some(h) = f.get("handler") {
        rows.push(vec!["handler".into(), s(h)]);
    }
    if let Some(layers) = f["layers"].as_array() {
        let names: Vec<String> = layers
            .iter()
            .map(|l| format!("{}:{}", s(&l["name"]), s(&l["version"])))
            .collect();
        rows.push(vec!["layers".into(), names.join(", ")]);
    }
    if let Some(m) = f.get("model") {
        rows.push(vec!["model file".into(), s(&m["file"])]);
        let inputs: Vec<String> = m["inputs"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        rows.push(vec!["inputs".into(), inputs.join(", ")]);
        if let Some(labels) = m["labels"].as_array() {
            rows.push(vec![
                "labels".into(),
                labels.iter().map(s).collect::<Vec<_>>().join(", "),
            ]);
        }
    }
    if let Some(sc) = f.get("scaling") {
        let show = |k: &str, default: &str| {
            let v = &sc[k];
            if v.is_null() {
                default.to_string()
            } else {
                s(v)
            }
        };
        rows.push(vec![
            "reserved concurrency".into(),
            show("reserved_concurrency", "none (the server's limit)"),
        ]);
        rows.push(vec![
            "provisioned".into(),
            show("provisioned_concurrency", "0"),
        ]);
        rows.push(vec!["keep-alive".into(), show("keep_alive", "5m")]);
        if f.get("model").is_some() {
            rows.push(vec!["max batch".into(), show("max_batch", "256")]);
            rows.push(vec![
                "max delay".into(),
                show("max_delay", "0 (no waiting)"),
            ]);
        }
    }
    if let Some(st) = f.get("stats") {
        rows.push(vec!["state".into(), s(&st["state"])]);
        rows.push(vec![
            "instances".into(),
            format!(
                "{} ({} provisioned)",
                s(&st["instances"]),
                s(&st["provisioned_instances"])
            ),
        ]);
        rows.push(vec!["invocations".into(), s(&st["invocations"])]);
        rows.push(vec!["errors".into(), s(&st["errors"])]);
        rows.push(vec!["throttles".into(), s(&st["throttles"])]);
        rows.push(vec!["cold starts".into(), s(&st["cold_starts"])]);
        rows.push(vec![
            "last init".into(),
            format!("{} ms", s(&st["last_init_duration_ms"])),
        ]);
    }
    render(&["FIELD", "VALUE"], &rows)
}

pub fn layers(list: &Value) -> String {
    let empty = vec![];
    let rows: Vec<Vec<String>> = list
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|l| {
            vec![
                s(&l["name"]),
                s(&l["version"]),
                mb(&l["compressed_size"]),
                mb(&l["unpacked_size"]),
                s(&l["description"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no layers published\n".into();
    }
    render(
        &["NAME", "VERSION", "COMPRESSED", "UNPACKED", "DESCRIPTION"],
        &rows,
    )
}

fn mb(v: &Value) -> String {
    format!("{:.1} MB", v.as_f64().unwrap_or(0.0) / 1_048_576.0)
}

pub fn layer_published(l: &Value) -> String {
    format!(
        "published layer {} version {}: {} compressed (limit {}), {} unpacked (limit {})\n",
        s(&l["name"]),
        s(&l["version"]),
        mb(&l["compressed_size"]),
        mb(&l["compressed_limit"]),
        mb(&l["unpacked_size"]),
        mb(&l["unpacked_limit"]),
    )
}

/// An API: its stage URLs and routes.
pub fn api(a: &Value) -> String {
    let mut out = format!("API {}\n", s(&a["name"]));
    for st in a["stages"].as_array().cloned().unwrap_or_default() {
        out += &format!("  stage {}: {}\n", s(&st["name"]), s(&st["url"]));
    }
    let rows: Vec<Vec<String>> = a["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            vec![
                s(&r["method"]),
                s(&r["path"]),
                s(&r["function"]),
                s(&r["integration"]),
                s(&r["auth"]),
            ]
        })
        .collect();
    out + &render(
        &["METHOD", "PATH", "FUNCTION", "INTEGRATION", "AUTH"],
        &rows,
    )
}

/// Text from the server (a function's output, its error messages) made safe for a
/// terminal: control characters other than newline and tab (escape sequences that could
/// rewrite the screen or the title) are shown as `\u{..}` instead of acting.
/// `modelfn keys list`.
pub fn keys(list: &Value) -> String {
    let empty = vec![];
    let rows: Vec<Vec<String>> = list
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|k| {
            vec![
                s(&k["access_key_id"]),
                s(&k["name"]),
                when(&k["created_at_ms"]),
            ]
        })
        .collect();
    render(&["ACCESS KEY ID", "NAME", "CREATED"], &rows)
}

/// `modelfn plans list`.
pub fn plans(list: &Value) -> String {
    let empty = vec![];
    let join = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let rows: Vec<Vec<String>> = list
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|p| {
            let quota = match p["quota"].as_u64() {
                Some(q) => format!("{q}/{}", s(&p["period"])),
                None => "-".into(),
            };
            vec![
                s(&p["name"]),
                s(&p["rate"]),
                s(&p["burst"]),
                quota,
                join(&p["targets"]),
                join(&p["keys"]),
            ]
        })
        .collect();
    render(
        &["NAME", "RATE/S", "BURST", "QUOTA", "TARGETS", "KEYS"],
        &rows,
    )
}

/// A time in Unix milliseconds as UTC, to the second.
fn when(v: &Value) -> String {
    v.as_i64()
        .map(|ms| {
            let t = modelfn_telemetry::time::rfc3339_ms(ms);
            t.get(..19).unwrap_or(&t).replace('T', " ")
        })
        .unwrap_or_else(|| "-".into())
}

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
