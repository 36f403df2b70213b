//! Cluster membership as the control plane keeps it: every node records itself in the
//! store every [`HEARTBEAT_EVERY`] (its address, version, the generation it has applied,
//! the calls it is running), and any node answers which nodes there are, which are up and
//! which are lost (no record for [`LOST_AFTER`]). On SQLite the cluster is this node.

use crate::{ControlError, ControlPlane};
use modelfn_registry::NodeRecord;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How often a node records itself.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A node without a record for this long is lost.
pub const LOST_AFTER: Duration = Duration::from_secs(10);
/// A lost node is forgotten after this long.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What names this node in the cluster.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub name: String,
    /// Where it listens (`host:port`).
    pub address: String,
    pub started_ms: i64,
}

/// Is a node alive?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Up,
    /// No record for [`LOST_AFTER`]: stopped, dead or cut off from the store.
    Lost,
}

/// A node, as `GET /v1/cluster` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(flatten)]
    pub node: NodeRecord,
    pub state: NodeState,
    /// Since its last record.
    pub seen_ago_ms: i64,
}

/// `GET /v1/cluster`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub this_node: String,
    /// Whether nodes share the store (PostgreSQL) or this node is alone (SQLite).
    pub shared: bool,
    /// The store's generation of desired state (a node up to date has applied it).
    pub generation: u64,
    pub nodes: Vec<NodeStatus>,
}

impl ControlPlane {
    /// Records this node in the store now.
    pub async fn heartbeat(&self, me: &NodeIdentity) -> Result<(), ControlError> {
        let scheduler = &self.scheduler;
        let in_flight: usize = scheduler
            .names()
            .iter()
            .filter_map(|n| scheduler.stats(n))
            .map(|s| s.in_flight)
            .sum();
        let record = NodeRecord {
            name: me.name.clone(),
            address: me.address.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms: me.started_ms,
            last_seen_ms: modelfn_registry::now_ms(),
            generation: self.applied_generation().await,
            in_flight: in_flight as u64,
        };
        self.meta.heartbeat(&record).await?;
        let _ = self.node.set(me.name.clone());
        Ok(())
    }

    /// Every node the store knows, up or lost.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ControlError> {
        let now = modelfn_registry::now_ms();
        let lost_ms = LOST_AFTER.as_millis() as i64;
        let _ = self
            .meta
            .forget_nodes(now - FORGET_AFTER.as_millis() as i64)
            .await;
        let nodes = self
            .meta
            .list_nodes()
            .await?
            .into_iter()
            .map(|node| {
                let seen_ago_ms = (now - node.last_seen_ms).max(0);
                NodeStatus {
                    state: if seen_ago_ms > lost_ms {
                        NodeState::Lost
                    } else {
                        NodeState::Up
                    },
                    seen_ago_ms,
                    node,
                }
            })
            .collect();
        Ok(ClusterStatus {
            this_node: self.node.get().cloned().unwrap_or_default(),
            shared: self.meta.shared(),
            generation: self.meta.generation().await?,
            nodes,
        })
    }
}

/// Records this node every [`HEARTBEAT_EVERY`] (abort the handle to stop).
pub fn spawn_heartbeat(
    control: Arc<ControlPlane>,
    me: NodeIdentity,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = control.heartbeat(&me).await {
                tracing::warn!(error = %e, "could not record this node in the store");
            }
        }
    })
}
