//! Asking the other nodes of a cluster: a GET of the admin API sent to every node that
//! membership lists as up (with the admin token, the same on every node), in parallel,
//! each answer bounded and timed out. What a node keeps to itself (invocation records)
//! is read this way from any node.

use crate::AppState;
use futures::future::join_all;
use std::time::Duration;

/// How long a peer has to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read from a peer.
const MAX_PEER_ANSWER: usize = 32 * 1024 * 1024;

/// A peer's answer (JSON), or why there is none.
pub struct PeerAnswer {
    pub node: String,
    pub answer: Result<serde_json::Value, String>,
}

/// Sends `GET path_and_query` to every other node that is up; answers each node's reply.
/// On a node alone (SQLite) there are none.
pub async fn ask_others(state: &AppState, path_and_query: &str) -> Vec<PeerAnswer> {
    let Ok(cluster) = state.control.cluster_status().await else {
        return Vec::new();
    };
    let client = match reqwest::Client::builder()
        .timeout(PEER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no HTTP client for asking the other nodes");
            return Vec::new();
        }
    };
    let peers = cluster.nodes.into_iter().filter(|n| {
        n.node.name != cluster.this_node
            && matches!(n.state, modelfn_control::cluster::NodeState::Up)
    });
    let asks = peers.map(|peer| {
        let client = client.clone();
        let url = format!("http://{}{path_and_query}", peer.node.address);
        let token = state.config.admin_token.clone();
        async move {
            PeerAnswer {
                answer: get_json(&client, &url, &token).await,
                node: peer.node.name,
            }
        }
    });
    join_all(asks).await
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<serde_json::Value, String> {
    let mut resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_PEER_ANSWER {
            return Err(format!("answered more than {MAX_PEER_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("answered something that is not JSON: {e}"))
}
