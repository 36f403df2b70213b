//! Mapping templates: the subset of API Gateway's Velocity (VTL) templates that
//! tutorials use. Text is copied as it is, and references are replaced:
//! `$input.params('x')`, `$input.params()`, `$input.json('$.a.b')`, `$input.body`,
//! `$context.requestId|httpMethod|stage|resourcePath|apiId|identity.sourceIp|identity.userAgent`,
//! `$stageVariables.name`, and `$util.escapeJavaScript|urlEncode|urlDecode|base64Encode|base64Decode(...)`.
//! Anything else (`#set`, `#if`, `#foreach`, other references) is refused when the
//! template is compiled, with its line and column.

use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// A template that failed to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Param(String),
    Params,
    Json(Vec<PathStep>),
    Body,
    Context(String),
    StageVar(String),
    Util(Util, Box<Arg>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Util {
    EscapeJavaScript,
    UrlEncode,
    UrlDecode,
    Base64Encode,
    Base64Decode,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Literal(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template can refer to.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub body: String,
    pub path: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    /// Header names as sent (looked up without regard to case).
    pub headers: BTreeMap<String, String>,
    pub context: BTreeMap<String, String>,
    pub stage_variables: BTreeMap<String, String>,
}

const CONTEXT_FIELDS: &[&str] = &[
    "requestId",
    "httpMethod",
    "stage",
    "resourcePath",
    "apiId",
    "identity.sourceIp",
    "identity.userAgent",
];

const DIRECTIVES: &[&str] = &[
    "set", "if", "elseif", "else", "end", "foreach", "macro", "parse", "include", "stop", "break",
    "define", "evaluate",
];

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, at: usize, message: impl Into<String>) -> TemplateError {
        let before = &self.src[..at.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        TemplateError {
            line,
            column,
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> String {
        let n = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        let id = self.rest()[..n].to_string();
        self.pos += n;
        id
    }

    /// `'text'` or `"text"`.
    fn string(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        let quote = match self.rest().chars().next() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(self.err(start, "expected a quoted string")),
        };
        self.pos += 1;
        let end = self
            .rest()
            .find(quote)
            .ok_or_else(|| self.err(start, "this string is not closed"))?;
        let s = self.rest()[..end].to_string();
        self.pos += end + 1;
        Ok(s)
    }

    /// After `$`: a reference.
    fn reference(&mut self, start: usize) -> Result<Expr, TemplateError> {
        let root = self.ident();
        match root.as_str() {
            "input" => {
                if !self.eat(".") {
                    return Err(
                        self.err(start, "expected $input.params, $input.json or $input.body")
                    );
                }
                let at = self.pos;
                match self.ident().as_str() {
                    "body" => Ok(Expr::Body),
                    "params" => {
                        self.expect("(", start)?;
                        if self.eat(")") {
                            return Ok(Expr::Params);
                        }
                        let name = self.string()?;
                        self.expect(")", start)?;
                        Ok(Expr::Param(name))
                    }
                    "json" => {
                        self.expect("(", start)?;
                        let path_at = self.pos;
                        let path = self.string()?;
                        self.expect(")", start)?;
                        Ok(Expr::Json(
                            parse_json_path(&path).map_err(|m| self.err(path_at, m))?,
                        ))
                    }
                    other => Err(self.err(
                        at,
                        format!("$input.{other} is not supported (use params, json or body)"),
                    )),
                }
            }
            "context" => {
                let at = self.pos;
                let mut path = Vec::new();
                while self.eat(".") {
                    path.push(self.ident());
                }
                let field = path.join(".");
                if CONTEXT_FIELDS.contains(&field.as_str()) {
                    Ok(Expr::Context(field))
                } else {
                    Err(self.err(
                        at,
                        format!(
                            "$context.{field} is not supported (use one of: {})",
                            CONTEXT_FIELDS.join(", ")
                        ),
                    ))
                }
            }
            "stageVariables" => {
                if !self.eat(".") {
                    return Err(self.err(start, "expected $stageVariables.NAME"));
                }
                Ok(Expr::StageVar(self.ident()))
            }
            "util" => {
                if !self.eat(".") {
                    return Err(self.err(start, "expected $util.FUNCTION(...)"));
                }
                let at = self.pos;
                let f = match self.ident().as_str() {
                    "escapeJavaScript" => Util::EscapeJavaScript,
                    "urlEncode" => Util::UrlEncode,
                    "urlDecode" => Util::UrlDecode,
                    "base64Encode" => Util::Base64Encode,
                    "base64Decode" => Util::Base64Decode,
                    other => return Err(self.err(at, format!("$util.{other} is not supported (use escapeJavaScript, urlEncode, urlDecode, base64Encode or base64Decode)"))),
                };
                self.expect("(", start)?;
                let arg = if self.rest().starts_with('$') {
                    let s = self.pos;
                    self.pos += 1;
                    Arg::Expr(self.reference(s)?)
                } else {
                    Arg::Literal(self.string()?)
                };
                self.expect(")", start)?;
                Ok(Expr::Util(f, Box::new(arg)))
            }
            "" => Err(self.err(start, "a reference must follow '$'")),
            other => Err(self.err(
                start,
                format!(
                    "${other} is not supported (use $input, $context, $stageVariables or $util)"
                ),
            )),
        }
    }

    fn expect(&mut self, s: &str, start: usize) -> Result<(), TemplateError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.err(self.pos.max(start), format!("expected '{s}'")))
        }
    }
}

fn parse_json_path(p: &str) -> Result<Vec<PathStep>, String> {
    let rest = p
        .strip_prefix('$')
        .ok_or_else(|| format!("the JSONPath {p:?} must start with '$'"))?;
    let mut steps = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        if let Some(r) = s.strip_prefix('.') {
            let n = r.find(['.', '[']).unwrap_or(r.len());
            if n == 0 {
                return Err(format!("the JSONPath {p:?} has an empty field name"));
            }
            steps.push(PathStep::Field(r[..n].to_string()));
            s = &r[n..];
        } else if let Some(r) = s.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("the JSONPath {p:?} has an unclosed '['"))?;
            let inner = &r[..end];
            let step = match inner.trim_matches(|c| c == '\'' || c == '"') {
                q if inner.starts_with(['\'', '"']) => PathStep::Field(q.to_string()),
                n => PathStep::Index(
                    n.parse()
                        .map_err(|_| format!("the JSONPath {p:?} has a bad index [{inner}]"))?,
                ),
            };
            steps.push(step);
            s = &r[end + 1..];
        } else {
            return Err(format!(
                "the JSONPath {p:?} is not supported (use $, .field, ['field'] and [n])"
            ));
        }
    }
    Ok(steps)
}

impl Template {
    /// Compiles a template, or says where and why it cannot be.
    pub fn compile(src: &str) -> Result<Template, TemplateError> {
        let mut p = Parser { src, pos: 0 };
        let mut parts = Vec::new();
        let mut text = String::new();
        while let Some(c) = p.rest().chars().next() {
            let start = p.pos;
            if c == '$' {
                let next = p.rest()[1..].chars().next();
                if next.is_some_and(|n| n.is_ascii_alphabetic() || n == '{' || n == '!') {
                    if matches!(next, Some('{') | Some('!')) {
                        return Err(p.err(start, "formal (${...}) and quiet ($!) references are not supported: write $input..."));
                    }
                    p.pos += 1;
                    let e = p.reference(start)?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Expr(e));
                    continue;
                }
            }
            if c == '#' {
                let word: String = p.rest()[1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .collect();
                if DIRECTIVES.contains(&word.as_str()) || p.rest().starts_with("#{") {
                    return Err(p.err(start, format!("the directive #{word} is not supported: templates may only interpolate references")));
                }
                if p.rest().starts_with("##") || p.rest().starts_with("#*") {
                    return Err(p.err(start, "VTL comments (## and #* *#) are not supported"));
                }
            }
            text.push(c);
            p.pos += c.len_utf8();
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Renders the template for one request.
    pub fn render(&self, inputs: &Inputs) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => out.push_str(&eval(e, inputs)),
            }
        }
        out
    }
}

fn header<'a>(inputs: &'a Inputs, name: &str) -> Option<&'a String> {
    inputs
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn eval(e: &Expr, inputs: &Inputs) -> String {
    match e {
        Expr::Param(name) => inputs
            .path
            .get(name)
            .or_else(|| inputs.query.get(name))
            .or_else(|| header(inputs, name))
            .cloned()
            .unwrap_or_default(),
        Expr::Params => {
            let m = |b: &BTreeMap<String, String>| {
                Value::Object(
                    b.iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect::<Map<_, _>>(),
                )
            };
            json!({"path": m(&inputs.path), "querystring": m(&inputs.query), "header": m(&inputs.headers)}).to_string()
        }
        Expr::Json(path) => {
            let Ok(mut v) = serde_json::from_str::<Value>(&inputs.body) else {
                return "null".into();
            };
            for step in path {
                v = match step {
                    PathStep::Field(f) => v.get(f).cloned().unwrap_or(Value::Null),
                    PathStep::Index(i) => v.get(*i).cloned().unwrap_or(Value::Null),
                };
            }
            v.to_string()
        }
        Expr::Body => inputs.body.clone(),
        Expr::Context(f) => inputs.context.get(f).cloned().unwrap_or_default(),
        Expr::StageVar(n) => inputs.stage_variables.get(n).cloned().unwrap_or_default(),
        Expr::Util(f, arg) => {
            let s = match &**arg {
                Arg::Literal(l) => l.clone(),
                Arg::Expr(e) => eval(e, inputs),
            };
            match f {
                Util::EscapeJavaScript => escape_js(&s),
                Util::UrlEncode => serde_urlencoded::to_string([("", s.as_str())])
                    .map(|x| x[1..].to_string())
                    .unwrap_or_default(),
                Util::UrlDecode => {
                    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("x={s}"))
                        .ok()
                        .and_then(|v| v.into_iter().next().map(|(_, v)| v))
                        .unwrap_or_default()
                }
                Util::Base64Encode => {
                    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
                }
                Util::Base64Decode => base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
            }
        }
    }
}

/// JavaScript string escaping as API Gateway's `$util.escapeJavaScript` does it.
fn escape_js(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
