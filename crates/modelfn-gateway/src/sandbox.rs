//! modelfn's API as a function sees it from inside its sandbox (`AWS_ENDPOINT_URL`).
//!
//! The listener lives in the function's own network namespace, so every request on it is
//! the function's: the caller is known by the connection, whatever credentials the
//! request carries. Only invocations of the functions its manifest's `[permissions]
//! invoke` grants, and the objects of the buckets its `[permissions] buckets` grants, are
//! served, like an execution role; everything else (the admin API, keys, listings, APIs)
//! is refused with 403 `AccessDeniedException`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use modelfn_core::FunctionCaller;
use serde_json::json;
use std::sync::Arc;

/// `app` restricted to what `caller` may do.
pub fn for_function(app: Router, caller: FunctionCaller) -> Router {
    app.layer(axum::middleware::from_fn_with_state(
        Arc::new(caller),
        guard,
    ))
}

async fn guard(
    State(caller): State<Arc<FunctionCaller>>,
    mut req: Request,
    next: Next,
) -> Response {
    match target(req.uri().path()) {
        Target::Health => next.run(req).await,
        Target::Function(f) if caller.permissions.may_invoke(&f) => {
            // The doors' own auth knows the caller by its sandbox.
            req.extensions_mut().insert(caller.clone());
            next.run(req).await
        }
        Target::Bucket(b) if caller.permissions.may_use_bucket(&b) => {
            req.extensions_mut().insert(caller.clone());
            next.run(req).await
        }
        Target::Bucket(b) => denied(&format!(
            "function {} may not use bucket {b}: grant it in its modelfn.toml ([permissions] buckets = [\"{b}\"])",
            caller.function
        )),
        Target::Function(f) => denied(&format!(
            "function {} is not allowed to invoke {f}: grant it in the caller's modelfn.toml ([permissions] invoke = [\"{f}\"])",
            caller.function
        )),
        Target::Other => denied(&format!(
            "function {} may only invoke functions and use buckets (granted by [permissions] invoke and buckets) from its sandbox",
            caller.function
        )),
    }
}

fn denied(message: &str) -> Response {
    let mut resp = (
        StatusCode::FORBIDDEN,
        axum::Json(json!({
            "Type": "User",
            "message": message,
            "error": {"type": "AccessDenied", "message": message},
        })),
    )
        .into_response();
    resp.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("AccessDeniedException"),
    );
    resp
}

#[derive(Debug, PartialEq)]
pub(crate) enum Target {
    Health,
    Function(String),
    /// A bucket's objects.
    Bucket(String),
    Other,
}

/// A function reference as the doors take it (`name`, `name:qualifier`, a full or
/// partial ARN, percent-encoded or not) → its name.
fn function_name(reference: &str) -> String {
    let decoded = percent_decode_str(reference);
    crate::request::parse_function_name(&decoded).0
}

fn percent_decode_str(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("x={}", s.replace('+', "%2B")))
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|(_, v)| v)
        .unwrap_or_else(|| s.to_string())
}

/// Which function a request invokes (by its path, on any door).
pub(crate) fn target(path: &str) -> Target {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let f = |s: &str| Target::Function(function_name(s));
    match parts.as_slice() {
        ["healthz"] | ["readyz"] | ["v2", "health", _] => Target::Health,
        ["v1", "functions", name, "invoke" | "invoke-async"] => f(name),
        ["2015-03-31", "functions", name, "invocations"] => f(name),
        ["endpoints", name, "invocations"] => f(name),
        ["v2", "models", name, "infer"] => f(name),
        ["v2", "models", name, "versions", _, "infer"] => f(name),
        ["v1", "models", target] if target.ends_with(":predict") => {
            f(target.trim_end_matches(":predict"))
        }
        ["urls", name, ..] => f(name),
        ["v1", "buckets", bucket, _, ..] => Target::Bucket((*bucket).to_string()),
        ["v1", "buckets", bucket] => Target::Bucket((*bucket).to_string()),
        _ => Target::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invoking_door_names_its_function() {
        let t = |p: &str| target(p);
        let f = |n: &str| Target::Function(n.into());
        assert_eq!(t("/v1/functions/digits/invoke"), f("digits"));
        assert_eq!(t("/v1/functions/digits:prod/invoke"), f("digits"));
        assert_eq!(t("/v1/functions/digits/invoke-async"), f("digits"));
        assert_eq!(
            t("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Adigits%3A3/invocations"),
            f("digits")
        );
        assert_eq!(
            t("/2015-03-31/functions/000000000000:function:iris/invocations"),
            f("iris")
        );
        assert_eq!(t("/endpoints/iris/invocations"), f("iris"));
        assert_eq!(t("/v2/models/iris/versions/2/infer"), f("iris"));
        assert_eq!(t("/v1/models/iris:predict"), f("iris"));
        assert_eq!(t("/urls/iris/a/b"), f("iris"));
        assert_eq!(t("/healthz"), Target::Health);
        let b = |n: &str| Target::Bucket(n.into());
        assert_eq!(t("/v1/buckets/uploads/in/a.csv"), b("uploads"));
        assert_eq!(t("/v1/buckets/uploads"), b("uploads"));
        assert_eq!(
            t("/v1/buckets/upl%6Fads/a"),
            b("upl%6Fads"),
            "not decoded: no grant matches"
        );
        for other in [
            "/v1/buckets",
            "/v1/functions",
            "/v1/functions/iris",
            "/v1/keys",
            "/2015-03-31/functions/",
            "/2015-03-31/functions/iris",
            "/apis/calc/PRD/addfive",
            "/v1/functions/iris/logs",
            "/v2/models/iris",
        ] {
            assert_eq!(t(other), Target::Other, "{other}");
        }
    }
}
