//! The mapping integration's inputs: what a request template sees (`$input`,
//! `$context`, `$stageVariables`).

use super::call::RouteCall;
use super::proxy_v1::header_text;
use super::template::Inputs;
use std::collections::BTreeMap;

/// The template inputs of a call.
pub(crate) fn inputs(call: &RouteCall<'_>) -> Inputs {
    Inputs {
        body: String::from_utf8_lossy(&call.body).into_owned(),
        path: call.path_params.clone(),
        // The first value of a repeated query parameter wins, as on API Gateway.
        query: call.query_pairs.iter().rev().cloned().collect(),
        headers: call
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        context: context(call),
        stage_variables: call.stage.variables.clone(),
    }
}

fn context(call: &RouteCall<'_>) -> BTreeMap<String, String> {
    let h = |n: &str| header_text(call.headers, n);
    let source = call
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    BTreeMap::from([
        ("requestId".to_string(), call.request_id.clone()),
        ("httpMethod".to_string(), call.method.as_str().to_string()),
        ("stage".to_string(), call.stage.name.clone()),
        ("resourcePath".to_string(), call.route.path.clone()),
        ("apiId".to_string(), call.api.name.clone()),
        ("identity.sourceIp".to_string(), source),
        ("identity.userAgent".to_string(), h("user-agent")),
    ])
}
