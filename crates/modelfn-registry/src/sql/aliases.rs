//! Aliases, their history, and provisioned concurrency per qualifier in SQL.

use super::{int, record_change, SqlMetadataStore};
use crate::metadata::{AliasRecord, AliasStore, ChangeKind, ProvisionedRecord, ShadowTarget};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

fn routing_json(routing: &[(u64, u32)]) -> Result<String, RegistryError> {
    serde_json::to_string(routing).map_err(|e| RegistryError::Storage(format!("routing: {e}")))
}

fn shadow_json(shadow: &Option<ShadowTarget>) -> Result<Option<String>, RegistryError> {
    shadow
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| RegistryError::Storage(format!("shadow: {e}")))
}

fn alias(row: &AnyRow) -> Result<AliasRecord, RegistryError> {
    let function: String = row.try_get(0)?;
    let name: String = row.try_get(1)?;
    let routing: String = row.try_get(2)?;
    let shadow: Option<String> = row.try_get(7)?;
    let shadow = shadow
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| {
            RegistryError::Storage(format!(
                "the shadow recorded for alias '{name}' of '{function}' does not read: {e}"
            ))
        })?;
    Ok(AliasRecord {
        shadow,
        routing: serde_json::from_str(&routing).map_err(|e| {
            RegistryError::Storage(format!(
                "the routing recorded for alias '{name}' of '{function}' does not read: {e}"
            ))
        })?,
        function,
        name,
        sticky: row.try_get(3)?,
        description: row.try_get(4)?,
        updated_at_ms: row.try_get(5)?,
        updated_by: row.try_get(6)?,
    })
}

impl SqlMetadataStore {
    async fn append_history(
        conn: &mut sqlx::AnyConnection,
        a: &AliasRecord,
    ) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO alias_history (function, name, routing, sticky, at_ms, \"by\", shadow) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&a.function)
            .bind(&a.name)
            .bind(routing_json(&a.routing)?)
            .bind(&a.sticky)
            .bind(a.updated_at_ms)
            .bind(&a.updated_by)
            .bind(shadow_json(&a.shadow)?)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl AliasStore for SqlMetadataStore {
    async fn put_alias(&self, a: &AliasRecord) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Alias, &a.function).await?;
        // The versions must exist when the alias is written: a concurrent version delete
        // cannot leave it pointing at nothing.
        let challenger = a.shadow.map(|s| s.version);
        for version in a.routing.iter().map(|(v, _)| *v).chain(challenger) {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM function_versions WHERE function = $1 AND version = $2",
            )
            .bind(&a.function)
            .bind(int(version)?)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(RegistryError::Conflict(format!(
                    "function '{}' has no version {version}",
                    a.function
                )));
            }
        }
        sqlx::query(
            "INSERT INTO aliases (function, name, routing, sticky, description, updated_at_ms, updated_by, shadow) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT(function, name) DO UPDATE SET routing = excluded.routing, sticky = excluded.sticky,
               description = excluded.description, updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by,
               shadow = excluded.shadow",
        )
        .bind(&a.function)
        .bind(&a.name)
        .bind(routing_json(&a.routing)?)
        .bind(&a.sticky)
        .bind(&a.description)
        .bind(a.updated_at_ms)
        .bind(&a.updated_by)
        .bind(shadow_json(&a.shadow)?)
        .execute(&mut *tx)
        .await?;
        Self::append_history(&mut tx, a).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_aliases(&self, function: &str) -> Result<Vec<AliasRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT function, name, routing, sticky, description, updated_at_ms, updated_by, shadow FROM aliases WHERE function = $1 ORDER BY name",
        )
        .bind(function)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alias).collect()
    }

    async fn delete_alias(
        &self,
        function: &str,
        name: &str,
        by: &str,
    ) -> Result<bool, RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Alias, function).await?;
        let done = sqlx::query("DELETE FROM aliases WHERE function = $1 AND name = $2")
            .bind(function)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            sqlx::query(
                "DELETE FROM provisioned_concurrency WHERE function = $1 AND qualifier = $2",
            )
            .bind(function)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            let gone = AliasRecord {
                function: function.to_string(),
                name: name.to_string(),
                routing: Vec::new(),
                sticky: None,
                shadow: None,
                description: String::new(),
                updated_at_ms: now_ms(),
                updated_by: by.to_string(),
            };
            Self::append_history(&mut tx, &gone).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn alias_history(&self, function: &str) -> Result<Vec<AliasRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT function, name, routing, sticky, CAST('' AS TEXT), at_ms, \"by\", shadow FROM alias_history WHERE function = $1 ORDER BY id",
        )
        .bind(function)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alias).collect()
    }

    async fn put_provisioned(&self, p: &ProvisionedRecord) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Config, &p.function).await?;
        let found: Option<i64> = match p.qualifier.parse::<u64>() {
            Ok(v) => sqlx::query_scalar(
                "SELECT 1 FROM function_versions WHERE function = $1 AND version = $2",
            )
            .bind(&p.function)
            .bind(int(v)?),
            Err(_) => sqlx::query_scalar("SELECT 1 FROM aliases WHERE function = $1 AND name = $2")
                .bind(&p.function)
                .bind(&p.qualifier),
        }
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(RegistryError::Conflict(format!(
                "function '{}' has no version or alias '{}'",
                p.function, p.qualifier
            )));
        }
        sqlx::query(
            "INSERT INTO provisioned_concurrency (function, qualifier, count, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(function, qualifier) DO UPDATE SET count = excluded.count,
               updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by",
        )
        .bind(&p.function)
        .bind(&p.qualifier)
        .bind(i64::from(p.count))
        .bind(p.updated_at_ms)
        .bind(&p.updated_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_provisioned(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<bool, RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Config, function).await?;
        let done = sqlx::query(
            "DELETE FROM provisioned_concurrency WHERE function = $1 AND qualifier = $2",
        )
        .bind(function)
        .bind(qualifier)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_provisioned(
        &self,
        function: &str,
    ) -> Result<Vec<ProvisionedRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT function, qualifier, count, updated_at_ms, updated_by FROM provisioned_concurrency WHERE function = $1 ORDER BY qualifier",
        )
        .bind(function)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let count: i64 = r.try_get(2)?;
                Ok(ProvisionedRecord {
                    function: r.try_get(0)?,
                    qualifier: r.try_get(1)?,
                    count: u32::try_from(count).map_err(|_| {
                        RegistryError::Storage(format!("provisioned count {count} does not read"))
                    })?,
                    updated_at_ms: r.try_get(3)?,
                    updated_by: r.try_get(4)?,
                })
            })
            .collect()
    }
}
