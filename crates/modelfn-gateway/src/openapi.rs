//! `GET /openapi.json`: the OpenAPI 3.0 description of the native and admin APIs,
//! written here beside the router (`lib.rs`) and checked against the running server by
//! schemathesis in the end-to-end tests. The AWS, Open Inference and API-stage front
//! doors follow their own published protocols and are not described here.

use axum::Json;
use serde_json::{json, Value};

fn error_ref() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
}

/// The responses an operation documents: `codes` are its successes, plus the errors.
fn responses(ok: &[(&str, &str, Option<Value>)], errors: &[&str]) -> Value {
    let mut r = serde_json::Map::new();
    for (code, desc, content) in ok {
        let mut v = json!({ "description": desc });
        if let Some(c) = content {
            v["content"] = c.clone();
        }
        r.insert((*code).to_string(), v);
    }
    for code in errors {
        r.insert(
            (*code).to_string(),
            json!({"description": "an error, with its type and a message", "content": error_ref()}),
        );
    }
    Value::Object(r)
}

fn name_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
}

fn any_json() -> Value {
    json!({"application/json": {"schema": {}}})
}

fn object(required: &[&str], props: Value) -> Value {
    json!({"application/json": {"schema": {"type": "object", "required": required, "properties": props, "additionalProperties": false}}})
}

const ADMIN_ERRORS: &[&str] = &["400", "401", "404", "413", "415", "422", "500"];
const INVOKE_ERRORS: &[&str] = &["400", "404", "413", "415", "429", "500", "503"];

/// The document.
pub fn document() -> Value {
    // Packages are tar.gz; application/gzip is accepted too.
    let gz =
        json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}});
    let invoke_ok = json!({"*/*": {"schema": {}}});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "modelfn", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Native invoke API and admin API of modelfn. Admin routes need `Authorization: Bearer <token>`."},
        "components": {
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["type", "message"],
                          "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}},
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "liveness", "responses": responses(&[("200", "up", Some(any_json()))], &[])}},
            "/readyz": {"get": {"summary": "readiness", "responses": responses(&[("200", "ready", Some(any_json())), ("503", "starting", Some(any_json()))], &[])}},
            "/v1/functions/{name}/invoke": {
                "parameters": [name_param("name")],
                "post": {"summary": "invoke a function with the body as its event (JSON; text/csv rows for models)",
                         "requestBody": {"content": {"application/json": {"schema": {}}}},
                         "responses": responses(&[("200", "the function's answer, or its error with x-modelfn-function-error", Some(invoke_ok.clone()))], INVOKE_ERRORS)},
                "get": {"summary": "invoke a function with the query string as its event",
                        "responses": responses(&[("200", "the function's answer", Some(invoke_ok))], INVOKE_ERRORS)}
            },
            "/v1/functions/{name}/invoke-async": {
                "parameters": [name_param("name")],
                "post": {"summary": "store an event for an asynchronous invocation (202 once stored)",
                         "requestBody": {"content": {"application/json": {"schema": {}}}},
                         "responses": responses(&[("202", "the event's request id", Some(any_json()))], INVOKE_ERRORS)}
            },
            "/v1/functions/{name}/map": {
                "parameters": [name_param("name")],
                "post": {"summary": "fan out: one invocation per line of a JSON Lines body, at most `concurrency` at once, answered line by line in the input's order",
                         "parameters": [{"name": "concurrency", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                                        {"name": "retries", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10}}],
                         "requestBody": {"description": "JSON Lines: one event per line", "content": {"text/plain": {"schema": {"type": "string"}}}},
                         "responses": responses(&[("200", "one line per item: index, request_id, attempts, ok, result or error", Some(json!({"application/x-ndjson": {"schema": {"type": "string"}}})))], INVOKE_ERRORS)}
            },
            "/v1/async": {
                "get": {"summary": "every function's asynchronous queue", "security": [{"admin": []}],
                        "responses": responses(&[("200", "queues", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/async/{request_id}": {
                "parameters": [{"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "an asynchronous event's state, attempts, error and answer", "security": [{"admin": []}],
                        "responses": responses(&[("200", "the event", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/buckets": {
                "get": {"summary": "the buckets", "security": [{"admin": []}],
                        "responses": responses(&[("200", "bucket names", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/buckets/{bucket}": {
                "parameters": [name_param("bucket")],
                "get": {"summary": "up to 1000 objects of a bucket in key order", "security": [{"admin": []}],
                        "parameters": [{"name": "prefix", "in": "query", "schema": {"type": "string"}}],
                        "responses": responses(&[("200", "objects", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/buckets/{bucket}/{key}": {
                "parameters": [name_param("bucket"), name_param("key")],
                "get": {"summary": "an object", "security": [{"admin": []}],
                        "responses": responses(&[("200", "the object", Some(json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})))], &["400", "401", "404"])},
                "put": {"summary": "write an object (functions whose [[objects]] match are invoked)", "security": [{"admin": []}],
                        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                        "responses": responses(&[("200", "its size and digest", Some(any_json()))], &["400", "401", "409", "413", "503"])},
                "delete": {"summary": "delete an object", "security": [{"admin": []}],
                        "responses": responses(&[("204", "deleted", None)], &["400", "401", "404", "503"])}
            },
            "/v1/streams": {
                "get": {"summary": "every shard of every stream source: records, errors, dead letters, lag, iterator age, connection", "security": [{"admin": []}],
                        "responses": responses(&[("200", "shards", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/dlq": {
                "get": {"summary": "dead letters, newest first, with their events", "security": [{"admin": []}],
                        "parameters": [{"name": "function", "in": "query", "schema": {"type": "string"}}, {"name": "id", "in": "query", "schema": {"type": "string"}},
                                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                        "responses": responses(&[("200", "dead letters", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/dlq/redrive": {
                "post": {"summary": "dead letters back to the queue with fresh attempts (a function's, one by id, or both)", "security": [{"admin": []}],
                         "parameters": [{"name": "function", "in": "query", "schema": {"type": "string"}}, {"name": "id", "in": "query", "schema": {"type": "string"}}],
                         "responses": responses(&[("200", "how many", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions": {
                "get": {"summary": "list functions", "security": [{"admin": []}], "responses": responses(&[("200", "functions", Some(any_json()))], ADMIN_ERRORS)},
                "post": {"summary": "deploy a package (tar.gz)", "security": [{"admin": []}],
                         "parameters": [{"name": "name", "in": "query", "schema": {"type": "string"}}, {"name": "validate", "in": "query", "schema": {"type": "boolean"}}],
                         "requestBody": {"required": true, "content": gz.clone()},
                         "responses": responses(&[("200", "unchanged", Some(any_json())), ("201", "a new version", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}": {
                "parameters": [name_param("name")],
                "get": {"summary": "describe a function", "security": [{"admin": []}], "responses": responses(&[("200", "the function", Some(any_json()))], ADMIN_ERRORS)},
                "delete": {"summary": "delete a function", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/logs": {
                "parameters": [name_param("name")],
                "get": {"summary": "a function's log lines", "security": [{"admin": []}],
                        "parameters": [{"name": "since", "in": "query", "schema": {"type": "string"}}, {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                       {"name": "request_id", "in": "query", "schema": {"type": "string"}}, {"name": "contains", "in": "query", "schema": {"type": "string"}},
                                       {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["success", "error"]}},
                                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                        "responses": responses(&[("200", "lines", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/invocations": {
                "parameters": [name_param("name")],
                "get": {"summary": "the records of a function's invocations", "security": [{"admin": []}],
                        "parameters": [{"name": "since", "in": "query", "schema": {"type": "string"}}, {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                       {"name": "request_id", "in": "query", "schema": {"type": "string"}},
                                       {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["success", "error"]}},
                                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                       {"name": "nodes", "in": "query", "schema": {"type": "string", "enum": ["this", "all"]}}],
                        "responses": responses(&[("200", "records", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/cluster": {
                "get": {"summary": "the nodes sharing this server's store: up or lost, the generation each applied, the calls each runs", "security": [{"admin": []}],
                        "responses": responses(&[("200", "the cluster", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/cost": {
                "get": {"summary": "what recorded usage would cost on Lambda and API Gateway, beside an always-on server", "security": [{"admin": []}],
                        "parameters": [{"name": "function", "in": "query", "schema": {"type": "string"}}, {"name": "period", "in": "query", "schema": {"type": "string"}},
                                       {"name": "per_day", "in": "query", "schema": {"type": "integer", "minimum": 0}}, {"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                       {"name": "per_million_invocations", "in": "query", "schema": {"type": "number", "minimum": 0}},
                                       {"name": "per_gb_second", "in": "query", "schema": {"type": "number", "minimum": 0}},
                                       {"name": "api_per_million", "in": "query", "schema": {"type": "number", "minimum": 0}},
                                       {"name": "server_per_month", "in": "query", "schema": {"type": "number", "minimum": 0}}],
                        "responses": responses(&[("200", "the report", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/traces": {
                "get": {"summary": "the newest kept traces, with their spans", "security": [{"admin": []}],
                        "parameters": [{"name": "function", "in": "query", "schema": {"type": "string"}},
                                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                        "responses": responses(&[("200", "traces", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/traces/{request_id}": {
                "parameters": [{"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "a request's trace, when it was kept", "security": [{"admin": []}],
                        "responses": responses(&[("200", "the trace", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/stats": {
                "get": {"summary": "every served version's counters and histograms (what modelfn top reads)", "security": [{"admin": []}],
                        "responses": responses(&[("200", "stats", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/dashboard/series": {
                "get": {"summary": "a function's invocations per minute, from its records", "security": [{"admin": []}],
                        "parameters": [{"name": "function", "in": "query", "required": true, "schema": {"type": "string"}},
                                       {"name": "minutes", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                        "responses": responses(&[("200", "points", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/dashboard": {
                "get": {"summary": "the web dashboard (the page; its data needs the admin token)",
                        "responses": responses(&[("200", "the page", Some(json!({"text/html": {"schema": {"type": "string"}}})))], &[])}
            },
            "/metrics": {
                "get": {"summary": "Prometheus metrics (the admin token or the metrics token)", "security": [{"admin": []}],
                        "responses": responses(&[("200", "the exposition", Some(json!({"text/plain": {"schema": {"type": "string"}}})))], &["401"])}
            },
            "/v1/functions/{name}/config": {
                "parameters": [name_param("name")],
                "put": {"summary": "change scaling settings", "security": [{"admin": []}],
                        "parameters": [{"name": "replace", "in": "query", "schema": {"type": "boolean"}}],
                        "requestBody": {"required": true, "content": object(&[], json!({
                            "reserved_concurrency": {"type": "integer", "minimum": 0}, "provisioned_concurrency": {"type": "integer", "minimum": 0},
                            "keep_alive": {"type": "string"}, "max_batch": {"type": "integer", "minimum": 1}, "max_delay": {"type": "string"}}))},
                        "responses": responses(&[("200", "the function", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/versions": {
                "parameters": [name_param("name")],
                "get": {"summary": "the function's versions", "security": [{"admin": []}], "responses": responses(&[("200", "versions", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/versions/{version}": {
                "parameters": [name_param("name"), name_param("version")],
                "delete": {"summary": "delete a version (not the latest, not one an alias uses)", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/aliases": {
                "parameters": [name_param("name")],
                "get": {"summary": "aliases and their history", "security": [{"admin": []}], "responses": responses(&[("200", "aliases", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/aliases/{alias}": {
                "parameters": [name_param("name"), name_param("alias")],
                "put": {"summary": "create or move an alias", "security": [{"admin": []}],
                        "requestBody": {"required": true, "content": object(&["routing"], json!({
                            "routing": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                            "sticky": {"type": "string"}, "description": {"type": "string"},
                            "shadow": {"type": "object", "required": ["version", "percent"], "additionalProperties": false,
                                       "properties": {"version": {"type": "integer", "minimum": 0}, "percent": {"type": "integer", "minimum": 0}}}}))},
                        "responses": responses(&[("200", "the alias", Some(any_json()))], ADMIN_ERRORS)},
                "delete": {"summary": "delete an alias", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/aliases/{alias}/shadow": {
                "parameters": [name_param("name"), name_param("alias")],
                "get": {"summary": "how the alias's shadow challenger agrees with its answers", "security": [{"admin": []}], "responses": responses(&[("200", "the report", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/provisioned": {
                "parameters": [name_param("name")],
                "get": {"summary": "provisioned concurrency per version or alias, and how much is up", "security": [{"admin": []}], "responses": responses(&[("200", "settings", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/provisioned/{qualifier}": {
                "parameters": [name_param("name"), name_param("qualifier")],
                "get": {"summary": "one version's or alias's provisioned concurrency", "security": [{"admin": []}], "responses": responses(&[("200", "the setting", Some(any_json()))], ADMIN_ERRORS)},
                "put": {"summary": "keep instances started for a version or an alias (waits until they are up unless wait is false)", "security": [{"admin": []}],
                        "requestBody": {"required": true, "content": object(&["count"], json!({
                            "count": {"type": "integer", "minimum": 1, "maximum": 1000}, "wait": {"type": "boolean"}}))},
                        "responses": responses(&[("200", "the setting and how much is up", Some(any_json()))], ADMIN_ERRORS)},
                "delete": {"summary": "remove it", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}
            },
            "/v1/store/models": {"get": {"summary": "the model store: every model and its current revision", "security": [{"admin": []}], "responses": responses(&[("200", "models", Some(any_json()))], ADMIN_ERRORS)}},
            "/v1/store/models/{name}": {
                "parameters": [name_param("name")],
                "get": {"summary": "a model's revisions", "security": [{"admin": []}], "responses": responses(&[("200", "revisions", Some(any_json()))], ADMIN_ERRORS)},
                "put": {"summary": "store a revision (checked against every function that follows the model, then current)", "security": [{"admin": []}],
                        "parameters": [{"name": "description", "in": "query", "schema": {"type": "string"}}],
                        "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                        "responses": responses(&[("201", "a new revision", Some(any_json())), ("200", "the same file as the current revision", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/store/models/{name}/rollback": {
                "parameters": [name_param("name")],
                "post": {"summary": "make an earlier revision current (the previous one by default)", "security": [{"admin": []}],
                         "parameters": [{"name": "to", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
                         "responses": responses(&[("200", "moved", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/url": {
                "parameters": [name_param("name")],
                "put": {"summary": "give the function a URL", "security": [{"admin": []}],
                        "requestBody": {"required": true, "content": object(&["auth"], json!({"auth": {"type": "string", "enum": ["none", "key"]}, "qualifier": {"type": "string"}}))},
                        "responses": responses(&[("200", "the URL", Some(any_json()))], ADMIN_ERRORS)},
                "delete": {"summary": "remove the URL", "security": [{"admin": []}], "responses": responses(&[("204", "removed", None)], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/events": {
                "parameters": [name_param("name")],
                "get": {"summary": "saved test events", "security": [{"admin": []}], "responses": responses(&[("200", "names", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/functions/{name}/events/{event}": {
                "parameters": [name_param("name"), name_param("event")],
                "get": {"summary": "a saved test event", "security": [{"admin": []}], "responses": responses(&[("200", "the event", Some(any_json()))], ADMIN_ERRORS)},
                "put": {"summary": "save a test event", "security": [{"admin": []}], "requestBody": {"required": true, "content": any_json()},
                        "responses": responses(&[("204", "saved", None)], ADMIN_ERRORS)}
            },
            "/v1/layers": {"get": {"summary": "layers", "security": [{"admin": []}], "responses": responses(&[("200", "layers", Some(any_json()))], ADMIN_ERRORS)}},
            "/v1/layers/{name}": {
                "parameters": [name_param("name")],
                "post": {"summary": "publish a layer (tar.gz)", "security": [{"admin": []}],
                         "parameters": [{"name": "description", "in": "query", "schema": {"type": "string"}}],
                         "requestBody": {"required": true, "content": gz},
                         "responses": responses(&[("201", "the layer version", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/keys": {
                "get": {"summary": "keys (without secrets)", "security": [{"admin": []}], "responses": responses(&[("200", "keys", Some(any_json()))], ADMIN_ERRORS)},
                "post": {"summary": "create a key (the secret is shown once)", "security": [{"admin": []}],
                         "requestBody": {"required": true, "content": object(&["name"], json!({"name": {"type": "string", "minLength": 1, "maxLength": 128}}))},
                         "responses": responses(&[("201", "the key", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/keys/{id}": {"parameters": [name_param("id")],
                "delete": {"summary": "delete a key", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}},
            "/v1/keys/{id}/usage": {"parameters": [name_param("id")],
                "get": {"summary": "requests per day with a key", "security": [{"admin": []}], "responses": responses(&[("200", "usage", Some(any_json()))], ADMIN_ERRORS)}},
            "/v1/plans": {"get": {"summary": "usage plans", "security": [{"admin": []}], "responses": responses(&[("200", "plans", Some(any_json()))], ADMIN_ERRORS)}},
            "/v1/plans/{name}": {
                "parameters": [name_param("name")],
                "put": {"summary": "create or replace a usage plan", "security": [{"admin": []}],
                        "requestBody": {"required": true, "content": object(&["rate", "burst", "targets", "keys"], json!({
                            "rate": {"type": "number"}, "burst": {"type": "integer"}, "quota": {"type": "integer", "minimum": 0},
                            "period": {"type": "string", "enum": ["day", "month"]}, "targets": {"type": "array", "items": {"type": "string"}},
                            "keys": {"type": "array", "items": {"type": "string"}}, "name": {"type": "string"}}))},
                        "responses": responses(&[("200", "the plan", Some(any_json()))], ADMIN_ERRORS)},
                "delete": {"summary": "delete a usage plan", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}
            },
            "/v1/apis": {
                "get": {"summary": "APIs", "security": [{"admin": []}], "responses": responses(&[("200", "APIs", Some(any_json()))], ADMIN_ERRORS)},
                "post": {"summary": "apply an API definition (TOML)", "security": [{"admin": []}],
                         "requestBody": {"required": true, "content": {"text/plain": {"schema": {"type": "string"}}}},
                         "responses": responses(&[("200", "the API", Some(any_json()))], ADMIN_ERRORS)}
            },
            "/v1/apis/{name}": {"parameters": [name_param("name")],
                "delete": {"summary": "delete an API", "security": [{"admin": []}], "responses": responses(&[("204", "deleted", None)], ADMIN_ERRORS)}}
        }
    })
}

/// `GET /openapi.json`
pub async fn serve() -> Json<Value> {
    Json(document())
}
