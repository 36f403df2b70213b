//! Node membership: each node records itself every few seconds (its address, version,
//! the generation of desired state it has applied, the calls it is running), so that any
//! node can say which nodes there are and whether they are alive (`modelfn cluster
//! status`).

use crate::RegistryError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A node as it last recorded itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's name (kept in its data directory across restarts).
    pub name: String,
    /// Where it listens, as it sees it.
    pub address: String,
    /// The modelfn version it runs.
    pub version: String,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    /// The generation of desired state it has applied.
    pub generation: u64,
    /// Calls it was running when it recorded itself.
    pub in_flight: u64,
}

#[async_trait]
pub trait NodeStore: Send + Sync + 'static {
    /// Records (or refreshes) a node.
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), RegistryError>;
    /// Every node recorded, by name.
    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, RegistryError>;
    /// Forgets nodes last seen before `before_ms`; answers how many.
    async fn forget_nodes(&self, before_ms: i64) -> Result<u64, RegistryError>;
}
