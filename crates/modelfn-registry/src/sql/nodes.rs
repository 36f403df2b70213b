//! Node membership in SQL.

use super::{int, uint, SqlMetadataStore};
use crate::nodes::{NodeRecord, NodeStore};
use crate::RegistryError;
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl NodeStore for SqlMetadataStore {
    async fn heartbeat(&self, n: &NodeRecord) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO nodes (name, address, version, started_ms, last_seen_ms, generation, in_flight)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, version = excluded.version,
               started_ms = excluded.started_ms, last_seen_ms = excluded.last_seen_ms,
               generation = excluded.generation, in_flight = excluded.in_flight",
        )
        .bind(&n.name)
        .bind(&n.address)
        .bind(&n.version)
        .bind(n.started_ms)
        .bind(n.last_seen_ms)
        .bind(int(n.generation)?)
        .bind(int(n.in_flight)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT name, address, version, started_ms, last_seen_ms, generation, in_flight
             FROM nodes ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRecord {
                    name: r.try_get(0)?,
                    address: r.try_get(1)?,
                    version: r.try_get(2)?,
                    started_ms: r.try_get(3)?,
                    last_seen_ms: r.try_get(4)?,
                    generation: uint(r, 5)?,
                    in_flight: uint(r, 6)?,
                })
            })
            .collect()
    }

    async fn forget_nodes(&self, before_ms: i64) -> Result<u64, RegistryError> {
        let done = sqlx::query("DELETE FROM nodes WHERE last_seen_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
