//! A Lambda function in Rust: `{"name": "Ada"}` → `{"message": "Hello, Ada!", ...}`, and
//! `{"fail": true}` → a function error.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fail: bool,
}

#[derive(Serialize)]
struct Response {
    message: String,
    request_id: String,
    function_name: String,
    memory_mb: i32,
}

async fn handler(event: LambdaEvent<Request>) -> Result<Response, Error> {
    let (req, ctx) = event.into_parts();
    if req.fail {
        return Err("asked to fail".into());
    }
    Ok(Response {
        message: format!("Hello, {}!", req.name.unwrap_or_else(|| "world".into())),
        request_id: ctx.request_id,
        function_name: ctx.env_config.function_name.clone(),
        memory_mb: ctx.env_config.memory,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
