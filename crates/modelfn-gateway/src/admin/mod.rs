//! The admin API, one module per resource. Every route requires the admin token
//! ([`auth::require_token`]).

pub mod aliases;
pub mod apis;
pub mod async_events;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod events;
pub mod functions;
pub mod invocations;
pub mod keys;
pub mod layers;
pub mod logs;
pub mod models;
pub mod peers;
pub mod plans;
pub mod provisioned;
pub mod traces;
pub mod urls;

pub(crate) use auth::constant_time_eq;

/// Who made a change through the admin API: it has one principal, the admin token.
pub(crate) const ADMIN: &str = "admin";
pub use auth::require_token;
