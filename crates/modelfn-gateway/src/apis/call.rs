//! A request matched to a route: what every integration reads (so that none of them needs
//! more than this and the definition).

use super::definition::{Api, Route, Stage};
use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use std::collections::BTreeMap;

/// One request matched to a route: everything its integration reads.
pub(crate) struct RouteCall<'a> {
    pub api: &'a Api,
    pub stage: &'a Stage,
    pub route: &'a Route,
    pub path_params: BTreeMap<String, String>,
    pub method: &'a Method,
    /// The path after the stage, from `/`.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub query_pairs: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub request_id: String,
}
