//! Proxy integration 2.0 (HTTP API): the payload 2.0 event function URLs send too
//! ([`crate::payload_v2`]), with what a route adds (route key, stage, path parameters,
//! stage variables). The result is mapped by `payload_v2::map_result`.

use super::call::RouteCall;
use serde_json::{json, Value};

/// The HTTP API proxy event (payload 2.0) of a route.
pub(crate) fn event_v2(call: &RouteCall<'_>) -> Value {
    let mut ev = crate::payload_v2::event_v2(
        &call.api.name,
        call.method,
        call.path,
        call.query,
        call.headers,
        &call.body,
        &call.request_id,
    );
    let route_key = format!("{} {}", call.route.method, call.route.path);
    ev["routeKey"] = json!(route_key);
    ev["requestContext"]["routeKey"] = json!(route_key);
    ev["requestContext"]["stage"] = json!(call.stage.name);
    if !call.path_params.is_empty() {
        ev["pathParameters"] = json!(call.path_params);
    }
    if !call.stage.variables.is_empty() {
        ev["stageVariables"] = json!(call.stage.variables);
    }
    ev
}
