//! The one place a door turns what a caller named (`name`, `name:3`, `name:$LATEST`, an
//! ARN, a path's name and version) into the version it invokes: a [`FunctionRef`]
//! resolved once by the scheduler, so the version checked is the version that runs.

use crate::request::parse_function_name;
use crate::AppState;
use axum::http::HeaderMap;
use modelfn_core::{FunctionRef, Invocation, InvocationOutput, InvocationReport, InvokeError};
use modelfn_scheduler::{Resolved, Sticky, Unresolved};
use std::future::Future;

/// The reference a raw name holds (`name`, `name:q`, a partial or a full ARN). A plain
/// name (every call without a qualifier) is taken as it is, with no allocation.
pub fn function_ref(raw: String) -> FunctionRef {
    if !raw.contains(':') {
        return FunctionRef::latest(raw);
    }
    let (name, qualifier) = parse_function_name(&raw);
    FunctionRef::new(name, qualifier.as_deref())
}

/// The version `r` names, or why there is none (as each door words a 404).
pub fn resolve(state: &AppState, r: &FunctionRef) -> Result<Resolved, (Unresolved, String)> {
    resolve_request(state, r, None, &[])
}

/// The same for a request whose alias may route by a sticky key: a header of the
/// request, or a top-level field of its JSON event (read only when the alias asks).
pub fn resolve_request(
    state: &AppState,
    r: &FunctionRef,
    headers: Option<&HeaderMap>,
    body: &[u8],
) -> Result<Resolved, (Unresolved, String)> {
    let key_of = |sticky: &Sticky| -> Option<String> {
        match sticky {
            Sticky::Header(h) => headers?
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            Sticky::JsonField(f) => {
                let v: serde_json::Value = serde_json::from_slice(body).ok()?;
                let field = v.get(f)?;
                Some(
                    field
                        .as_str()
                        .map_or_else(|| field.to_string(), str::to_string),
                )
            }
        }
    };
    state.scheduler.resolve_ref_with(r, &key_of).map_err(|why| {
        let message = why.message(r);
        (why, message)
    })
}

/// For the native doors: a missing function is `FunctionNotFound`, as before; a missing
/// version or alias says which.
pub fn not_found(r: &FunctionRef, why: &Unresolved, message: String) -> crate::ApiError {
    match why {
        Unresolved::NoFunction => InvokeError::FunctionNotFound(r.name.clone()).into(),
        Unresolved::NoVersion { .. } | Unresolved::NoAlias => crate::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "FunctionNotFound",
            message,
        ),
    }
}

/// Runs `inv` on the version `target` resolved to, stamped with where the request came
/// from (its door, the key that authenticated it, when it was received and
/// authenticated), for its record, metrics and trace. A plain function answering the
/// scheduler's future, not an `async fn` around it: one layer of future fewer to move.
pub fn invoke<'a>(
    state: &'a AppState,
    target: &'a Resolved,
    mut inv: Invocation,
) -> impl Future<Output = Result<(InvocationOutput, InvocationReport), InvokeError>> + Send + 'a {
    inv.origin = crate::request::origin();
    state.scheduler.invoke_resolved(target, inv)
}
