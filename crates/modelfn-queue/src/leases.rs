//! Named leases: one holder at a time for a piece of work that must not run on two nodes
//! at once (a stream mapping's shards, read in order). A node holds a lease by renewing
//! it before it lapses; when the node dies, it lapses and another node takes it.

use crate::{now_ms, QueueError};
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes the lease `name` for this node, or renews it if this node holds it, for
    /// `hold_for` from now; answers whether this node holds it (false: another node's
    /// lease has not lapsed).
    async fn hold(&self, name: &str, hold_for: Duration) -> Result<bool, QueueError>;
    /// Gives the lease up, if this node holds it.
    async fn release(&self, name: &str) -> Result<(), QueueError>;
}

#[async_trait]
impl Leases for crate::SqlQueue {
    async fn hold(&self, name: &str, hold_for: Duration) -> Result<bool, QueueError> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(hold_for.as_millis()).unwrap_or(i64::MAX / 4));
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
             WHERE leases.holder = excluded.holder OR leases.until_ms < $4
             RETURNING holder",
        )
        .bind(name)
        .bind(self.node())
        .bind(until)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(held.is_some())
    }

    async fn release(&self, name: &str) -> Result<(), QueueError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(self.node())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
