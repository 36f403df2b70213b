//! APIs with stages and routes, as API Gateway's REST and HTTP APIs have them, defined
//! in a TOML file and applied with `modelfn api apply FILE`. Served at
//! `/apis/{api}/{stage}/{path}`.
//!
//! - [`definition`]: the file's schema, checked and compiled (routes, templates);
//! - [`template`]: the mapping-template subset;
//! - [`serve`]: matching a request to a route and running its integration (proxy
//!   events 1.0 and 2.0, or mapping templates), CORS, auth and limits.

pub mod definition;
mod proxy_v1;
pub mod serve;
pub mod template;

pub use definition::{Api, ApiError as DefinitionError};
