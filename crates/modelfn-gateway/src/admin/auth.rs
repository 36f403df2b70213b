//! Who may use the admin API: `Authorization: Bearer <admin token>`, compared in constant
//! time.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuses admin requests without the right bearer token.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), state.config.admin_token.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "the admin token is wrong").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the admin API needs `Authorization: Bearer <token>`; the token is in the server's data directory (admin-token)",
        )
        .into_response(),
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
