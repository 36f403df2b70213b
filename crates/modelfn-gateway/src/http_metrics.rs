//! Requests by front door and status class, counted where every request passes (the
//! front door's service, `serve`): the door is read from the path's prefix and the
//! count is one relaxed atomic add in a fixed table, no lock and no allocation. Requests
//! by access key (those a key authenticated) and by API route are counted too, in tables
//! that grow once per new key or route (a read lock and an add after that).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

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
    let door = if path.starts_with("/v1/functions/")
        && (path.ends_with("/invoke") || path.ends_with("/invoke-async") || path.ends_with("/map"))
    {
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

/// Counts by status class.
type Classes = [AtomicU64; CLASSES.len()];

/// Series at most per table: past it, new keys or routes count as `other`.
const MAX_SERIES: usize = 10_000;

/// Counts by a name that is not known in advance (a key id, a route).
struct Named(LazyLock<RwLock<HashMap<Arc<str>, Arc<Classes>>>>);

static KEYS: Named = Named(LazyLock::new(Default::default));
static ROUTES: Named = Named(LazyLock::new(Default::default));

impl Named {
    fn count(&self, name: &str, status: u16) {
        let class = usize::from(status / 100).clamp(1, CLASSES.len()) - 1;
        let found = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        let row = match found {
            Some(row) => row,
            None => {
                let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
                let name = if map.len() >= MAX_SERIES && !map.contains_key(name) {
                    "other"
                } else {
                    name
                };
                map.entry(Arc::from(name)).or_default().clone()
            }
        };
        row[class].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, &'static str, u64)> = map
            .iter()
            .flat_map(|(name, row)| {
                CLASSES
                    .iter()
                    .zip(row.iter())
                    .map(|(c, n)| (name.to_string(), *c, n.load(Ordering::Relaxed)))
            })
            .collect();
        out.sort();
        out
    }
}

/// Counts one request a key authenticated.
pub fn count_key(key: &str, status: u16) {
    KEYS.count(key, status);
}

/// Counts one request of an API route, named `api stage METHOD /path`.
pub fn count_route(route: &str, status: u16) {
    ROUTES.count(route, status);
}

/// `(key, class, count)` for every key seen.
pub fn key_snapshot() -> Vec<(String, &'static str, u64)> {
    KEYS.snapshot()
}

/// `(route, class, count)` for every route called.
pub fn route_snapshot() -> Vec<(String, &'static str, u64)> {
    ROUTES.snapshot()
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
    fn keys_are_counted_by_class() {
        count_key("AKIDTEST1", 200);
        count_key("AKIDTEST1", 200);
        count_key("AKIDTEST1", 429);
        let mine: Vec<_> = key_snapshot()
            .into_iter()
            .filter(|(k, _, n)| k == "AKIDTEST1" && *n > 0)
            .map(|(_, c, n)| (c, n))
            .collect();
        assert_eq!(mine, [("2xx", 2), ("4xx", 1)]);
    }

    #[test]
    fn paths_name_their_doors() {
        for (path, door) in [
            ("/v1/functions/iris/invoke", "native"),
            ("/v1/functions/iris:prod/invoke", "native"),
            ("/v1/functions/iris/invoke-async", "native"),
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
