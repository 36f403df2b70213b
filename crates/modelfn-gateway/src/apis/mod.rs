//! APIs with stages and routes, as API Gateway's REST and HTTP APIs have them, defined
//! in a TOML file and applied with `modelfn api apply FILE`. Served at
//! `/apis/{api}/{stage}/{path}`.
//!
//! - [`definition`]: the file's schema, checked and compiled (routes, templates);
//! - [`template`]: the mapping-template subset;
//! - [`serve`]: matching a request to a route (a `RouteCall`), auth and limits, and
//!   running its integration: `proxy_v1` (REST API events), `proxy_v2` (HTTP API
//!   events), `mapping` (template inputs); `cors` answers preflights.

mod call;
mod cors;
pub mod definition;
mod mapping;
mod proxy_v1;
mod proxy_v2;
pub mod serve;
pub mod template;

pub use definition::{Api, ApiError as DefinitionError};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The compiled APIs of this node, by name: kept by the control plane's reconciler (this
/// is its [`ApiFollower`](modelfn_control::ApiFollower)), read on every API call.
#[derive(Default)]
pub struct CompiledApis(RwLock<HashMap<String, Arc<Api>>>);

impl CompiledApis {
    pub fn get(&self, name: &str) -> Option<Arc<Api>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Every compiled API, by name.
    pub fn all(&self) -> Vec<Arc<Api>> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Arc<Api>> = map.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

impl modelfn_control::ApiFollower for CompiledApis {
    fn replace_all(&self, apis: Vec<modelfn_control::ApiRecord>) {
        let mut compiled = HashMap::new();
        for rec in apis {
            match Api::compile(&rec.definition) {
                Ok(api) => {
                    compiled.insert(rec.name, Arc::new(api));
                }
                Err(e) => {
                    tracing::error!(api = %rec.name, error = %e, "a stored API does not compile")
                }
            }
        }
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = compiled;
    }
}
