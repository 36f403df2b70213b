//! What every door does first with a request: a request id, and the function a reference
//! names (a name, `name:qualifier`, a partial or a full ARN).

/// A request id: a version-4 UUID from the thread's CSPRNG (ChaCha, seeded by the OS), so
/// that no caller or function can guess another's. No system call per request.
pub(crate) fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `name`, `name:q`, `123456789012:function:name[:q]`, `arn:aws:lambda:r:a:function:name[:q]`.
pub fn parse_function_name(raw: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = raw.split(':').collect();
    let rest: &[&str] = if parts.len() >= 7 && parts[0] == "arn" {
        &parts[6..]
    } else if parts.len() >= 3 && parts[1] == "function" {
        &parts[2..]
    } else {
        &parts[..]
    };
    let name = rest.first().copied().unwrap_or("").to_string();
    let qualifier = rest.get(1).map(|q| q.to_string());
    (name, qualifier)
}
