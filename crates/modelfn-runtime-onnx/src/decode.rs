//! Request bodies to rows of features.
//!
//! Accepted shapes, for a model whose inputs are named `a, b, c`:
//! - a JSON object of named values `{"a": 1, "b": 2, "c": 3}` (one row);
//! - a JSON array of values `[1, 2, 3]` (one row);
//! - an array of rows `[[1, 2, 3], {"a": 4, ...}]` or `{"instances": [...]}` (a batch);
//! - `text/csv`: one row per line, values in input order, no header.
//!
//! Values are numbers or strings holding numbers (what query strings and mapping
//! templates produce); each must be a finite 32-bit float. Anything else is refused with a
//! message that names the input and what is wrong.

use modelfn_core::InvokeError;
use serde_json::Value;

/// Features decoded from one request, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub values: Vec<f32>,
    pub count: usize,
    /// Whether the caller sent a batch (answered as `{"predictions": [...]}`).
    pub batch: bool,
}

/// The content types the ONNX runtime reads.
pub const SUPPORTED: &str = "send application/json or text/csv";

/// Decodes a body by its media type (`None` is read as JSON).
pub fn decode(
    body: &[u8],
    content_type: Option<&str>,
    inputs: &[String],
) -> Result<Rows, InvokeError> {
    match content_type {
        None | Some("") | Some("application/json") => decode_json(body, inputs),
        Some(ct) if ct.ends_with("+json") => decode_json(body, inputs),
        Some("text/csv") => decode_csv(body, inputs),
        Some(other) => Err(InvokeError::UnsupportedMediaType {
            content_type: other.to_string(),
            supported: SUPPORTED,
        }),
    }
}

fn bad(msg: String) -> InvokeError {
    InvokeError::InvalidInput(msg)
}

/// The message of seed 004 for a body without every feature.
pub fn missing_message(inputs: &[String]) -> String {
    format!("'body' must contain values for: {}", inputs.join(", "))
}

fn decode_json(body: &[u8], inputs: &[String]) -> Result<Rows, InvokeError> {
    if let Some((values, count, batch)) = crate::decode_fast::decode(body, inputs) {
        return Ok(Rows {
            values,
            count,
            batch,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(format!(
            "the request body is empty; {}",
            missing_message(inputs)
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the request body is not valid JSON: {e}")))?;
    let mut rows = Rows {
        values: Vec::with_capacity(inputs.len()),
        count: 0,
        batch: false,
    };
    match value {
        Value::Object(mut map)
            if map.len() == 1
                && map.contains_key("instances")
                && !inputs.iter().any(|i| i == "instances") =>
        {
            let instances = map.remove("instances").unwrap_or(Value::Null);
            let Value::Array(items) = instances else {
                return Err(bad(format!(
                    "'instances' must be an array of rows, got {}",
                    describe(&instances)
                )));
            };
            batch(items, inputs, &mut rows)?;
        }
        Value::Object(map) => {
            object_row(&map, inputs, &mut rows.values).map_err(bad)?;
            rows.count = 1;
        }
        Value::Array(items) if items.iter().any(|v| v.is_array() || v.is_object()) => {
            batch(items, inputs, &mut rows)?;
        }
        Value::Array(items) => {
            array_row(&items, inputs, &mut rows.values).map_err(bad)?;
            rows.count = 1;
        }
        other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
            return Err(bad(format!(
                "the request body must be a JSON object of named values or an array, got {}; {}",
                describe(&other),
                missing_message(inputs)
            )))
        }
    }
    Ok(rows)
}

fn batch(items: Vec<Value>, inputs: &[String], rows: &mut Rows) -> Result<(), InvokeError> {
    if items.is_empty() {
        return Err(bad("the batch is empty: send at least one row".into()));
    }
    rows.batch = true;
    rows.values.reserve(items.len() * inputs.len());
    for (i, item) in items.iter().enumerate() {
        let r = match item {
            Value::Object(map) => object_row(map, inputs, &mut rows.values),
            Value::Array(vals) => array_row(vals, inputs, &mut rows.values),
            other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => Err(
                format!("must be an object or an array, got {}", describe(other)),
            ),
        };
        r.map_err(|m| bad(format!("row {i}: {m}")))?;
    }
    rows.count = items.len();
    Ok(())
}

fn object_row(
    map: &serde_json::Map<String, Value>,
    inputs: &[String],
    out: &mut Vec<f32>,
) -> Result<(), String> {
    if inputs.iter().any(|name| !map.contains_key(name)) {
        return Err(missing_message(inputs));
    }
    if map.len() > inputs.len() {
        let unknown: Vec<&str> = map
            .keys()
            .filter(|k| !inputs.contains(k))
            .map(String::as_str)
            .collect();
        return Err(format!(
            "unknown input{} {}; the model takes: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            inputs.join(", ")
        ));
    }
    for name in inputs {
        out.push(number(name, &map[name])?);
    }
    Ok(())
}

fn array_row(vals: &[Value], inputs: &[String], out: &mut Vec<f32>) -> Result<(), String> {
    if vals.len() != inputs.len() {
        return Err(format!(
            "a row must have {} values ({}), got {}",
            inputs.len(),
            inputs.join(", "),
            vals.len()
        ));
    }
    for (name, v) in inputs.iter().zip(vals) {
        out.push(number(name, v)?);
    }
    Ok(())
}

fn number(name: &str, v: &Value) -> Result<f32, String> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(x) => Some(x),
            Err(_) => {
                return Err(format!(
                    "input '{name}' must be a number, got the string {:?}",
                    truncate(s)
                ))
            }
        },
        other @ (Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_)) => {
            return Err(format!(
                "input '{name}' must be a number, got {}",
                describe(other)
            ))
        }
    };
    finite_f32(x.unwrap_or(f64::NAN)).map_err(|why| format!("input '{name}' {why}"))
}

fn finite_f32(x: f64) -> Result<f32, String> {
    if !x.is_finite() {
        return Err(format!("must be a finite number, got {x}"));
    }
    let f = x as f32;
    if !f.is_finite() {
        return Err(format!("= {x} is out of range for a 32-bit float"));
    }
    Ok(f)
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({:?})", truncate(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn decode_csv(body: &[u8], inputs: &[String]) -> Result<Rows, InvokeError> {
    let text =
        std::str::from_utf8(body).map_err(|e| bad(format!("the CSV body is not UTF-8: {e}")))?;
    let mut rows = Rows {
        values: Vec::new(),
        count: 0,
        batch: false,
    };
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != inputs.len() {
            return Err(bad(format!(
                "CSV line {} has {} values; the model takes {} ({})",
                lineno + 1,
                fields.len(),
                inputs.len(),
                inputs.join(", ")
            )));
        }
        for (col, (field, name)) in fields.iter().zip(inputs).enumerate() {
            let f = field.trim().trim_matches('"');
            let x: f64 = f.parse().map_err(|_| {
                bad(format!(
                    "CSV line {}, column {} ('{name}'): {:?} is not a number",
                    lineno + 1,
                    col + 1,
                    truncate(f)
                ))
            })?;
            let v = finite_f32(x).map_err(|why| {
                bad(format!(
                    "CSV line {}, column {} ('{name}') {why}",
                    lineno + 1,
                    col + 1
                ))
            })?;
            rows.values.push(v);
        }
        rows.count += 1;
    }
    if rows.count == 0 {
        return Err(bad(format!(
            "the CSV body has no rows; send one line of {} comma-separated values",
            inputs.len()
        )));
    }
    rows.batch = rows.count > 1;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn err(body: &str, ct: Option<&str>) -> String {
        decode(body.as_bytes(), ct, &names(&["a", "b"]))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_accepted_shape() {
        let n = names(&["a", "b"]);
        let one = |b: &str| decode(b.as_bytes(), Some("application/json"), &n).unwrap();
        assert_eq!(one(r#"{"b": 2, "a": 1}"#).values, vec![1.0, 2.0]);
        assert_eq!(one(r#"{"a": "1.5", "b": " 2"}"#).values, vec![1.5, 2.0]);
        assert_eq!(one("[1, 2]").values, vec![1.0, 2.0]);
        let b = one(r#"[[1, 2], {"a": 3, "b": 4}]"#);
        assert_eq!(
            (b.values, b.count, b.batch),
            (vec![1.0, 2.0, 3.0, 4.0], 2, true)
        );
        let b = one(r#"{"instances": [[1, 2]]}"#);
        assert_eq!((b.count, b.batch), (1, true));
        let c = decode(b"1,2\n\n3,4\n", Some("text/csv"), &n).unwrap();
        assert_eq!(
            (c.values, c.count, c.batch),
            (vec![1.0, 2.0, 3.0, 4.0], 2, true)
        );
        assert!(!decode(b"1,2\r\n", Some("text/csv"), &n).unwrap().batch);
    }

    #[test]
    fn missing_names_every_input() {
        assert_eq!(
            err(r#"{"a": 1}"#, None),
            "'body' must contain values for: a, b"
        );
    }

    #[test]
    fn clear_errors() {
        assert!(err("", None).contains("empty"));
        assert!(err("{nope", None).contains("not valid JSON"));
        assert!(err("NaN", None).contains("not valid JSON"));
        assert!(err(r#"{"a": "NaN", "b": 1}"#, None).contains("finite"));
        assert!(err(r#"{"a": "inf", "b": 1}"#, None).contains("finite"));
        assert!(err(r#"{"a": 1e39, "b": 1}"#, None).contains("out of range"));
        assert!(err(r#"{"a": true, "b": 1}"#, None)
            .contains("input 'a' must be a number, got a boolean"));
        assert!(err(r#"{"a": "x", "b": 1}"#, None).contains("got the string \"x\""));
        assert!(err(r#"{"a": null, "b": 1}"#, None).contains("got null"));
        assert!(err(r#"{"a": 1, "b": 2, "zz": 3}"#, None).contains("unknown input 'zz'"));
        assert!(err("[1]", None).contains("must have 2 values"));
        assert!(err("[]", None).contains("must have 2 values"));
        assert!(err(r#"[[1, 2], 3]"#, None).starts_with("row 1:"));
        assert!(err(r#"{"instances": []}"#, None).contains("empty"));
        assert!(err("42", None).contains("JSON object"));
        assert!(err("1,2,3", Some("text/csv")).contains("has 3 values"));
        assert!(err("1,x", Some("text/csv")).contains("column 2 ('b')"));
        assert!(err("\n", Some("text/csv")).contains("no rows"));
        assert!(matches!(
            decode(b"x", Some("application/xml"), &names(&["a"])),
            Err(InvokeError::UnsupportedMediaType { .. })
        ));
    }
}
