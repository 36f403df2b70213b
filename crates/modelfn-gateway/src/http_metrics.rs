//! Requests by front door and status class, counted where every request passes (the
//! front door's service, `serve`): the door is read from the path's prefix and the
//! count is one relaxed atomic add in a fixed table, no lock and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};

/// The front doors, as the metrics name them.
pub const DOORS: [&str; 9] = [
    "native",
    "lambda",
    "sagemaker",
    "oip",
    "url",
    "api",
    "admin",
    "health",
    "other",
];

/// Status classes: 1xx to 5xx.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

static COUNTS: [[AtomicU64; CLASSES.len()]; DOORS.len()] =
    [const { [const { AtomicU64::new(0) }; CLASSES.len()] }; DOORS.len()];

/// Which door a path is for (an index into [`DOORS`]).
pub fn door_of(path: &str) -> usize {
    let door = if path.starts_with("/v1/functions/") && path.ends_with("/invoke") {
        "native"
    } else if path.starts_with("/urls/") {
        "url"
    } else if path.starts_with("/apis/") {
        "api"
    } else if path.starts_with("/2015-03-31/") || path.starts_with("/2019-09-30/") {
        "lambda"
    } else if path.starts_with("/endpoints/") || path == "/" {
        "sagemaker"
    } else if path == "/v2" || path.starts_with("/v2/") || path.starts_with("/v1/models") {
        "oip"
    } else if path.starts_with("/v1/") || path == "/metrics" || path == "/dashboard" {
        "admin"
    } else if matches!(path, "/healthz" | "/readyz" | "/openapi.json") {
        "health"
    } else {
        "other"
    };
    DOORS
        .iter()
        .position(|d| *d == door)
        .unwrap_or(DOORS.len() - 1)
}

/// Counts one answered request.
pub fn count(door: usize, status: u16) {
    let class = usize::from(status / 100).clamp(1, CLASSES.len()) - 1;
    if let Some(row) = COUNTS.get(door) {
        row[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// `(door, class, count)` for every pair.
pub fn snapshot() -> Vec<(&'static str, &'static str, u64)> {
    let mut out = Vec::with_capacity(DOORS.len() * CLASSES.len());
    for (d, row) in DOORS.iter().zip(&COUNTS) {
        for (c, n) in CLASSES.iter().zip(row) {
            out.push((*d, *c, n.load(Ordering::Relaxed)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_doors() {
        for (path, door) in [
            ("/v1/functions/iris/invoke", "native"),
            ("/v1/functions/iris:prod/invoke", "native"),
            ("/v1/functions/iris", "admin"),
            ("/2015-03-31/functions/iris/invocations", "lambda"),
            ("/endpoints/iris/invocations", "sagemaker"),
            ("/v2/models/iris/infer", "oip"),
            ("/v1/models/iris:predict", "oip"),
            ("/urls/f/x", "url"),
            ("/apis/shop/prod/predict", "api"),
            ("/healthz", "health"),
            ("/nope", "other"),
        ] {
            assert_eq!(DOORS[door_of(path)], door, "{path}");
        }
    }
}
