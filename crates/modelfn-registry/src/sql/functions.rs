//! Functions, versions, configuration, test events and layers in SQL.

use super::{int, next, record_change, uint, SqlMetadataStore};
use crate::metadata::{
    ChangeKind, FunctionRecord, FunctionStore, LayerRecord, LayerStore, NewVersion, ShadowTarget,
    VersionDeleted,
};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

const SELECT: &str = "SELECT f.name, f.latest_version, v.runtime, v.manifest, v.code_sha256, v.code_size, f.created_at_ms, f.updated_at_ms, v.layers
     FROM functions f JOIN function_versions v ON v.function = f.name AND v.version = f.latest_version";

/// A version's own row, in the columns `record` reads (created = updated = the version's).
const SELECT_VERSION: &str = "SELECT function, version, runtime, manifest, code_sha256, code_size, created_at_ms, created_at_ms, layers FROM function_versions";

const SELECT_LAYER: &str = "SELECT name, version, code_sha256, compressed_size, unpacked_size, description, created_at_ms FROM layer_versions";

fn record(row: &AnyRow) -> Result<FunctionRecord, RegistryError> {
    let name: String = row.try_get(0)?;
    let layers: String = row.try_get(8)?;
    Ok(FunctionRecord {
        layers: serde_json::from_str(&layers).map_err(|e| {
            RegistryError::Storage(format!("the layers recorded for '{name}' do not read: {e}"))
        })?,
        name,
        version: uint(row, 1)?,
        runtime: row.try_get(2)?,
        manifest: row.try_get(3)?,
        code_sha256: row.try_get(4)?,
        code_size: uint(row, 5)?,
        created_at_ms: row.try_get(6)?,
        updated_at_ms: row.try_get(7)?,
    })
}

fn layer_record(row: &AnyRow) -> Result<LayerRecord, RegistryError> {
    Ok(LayerRecord {
        name: row.try_get(0)?,
        version: uint(row, 1)?,
        code_sha256: row.try_get(2)?,
        compressed_size: uint(row, 3)?,
        unpacked_size: uint(row, 4)?,
        description: row.try_get(5)?,
        created_at_ms: row.try_get(6)?,
    })
}

/// Whether an alias's routing (or its shadow) names `version`; the JSON is read here, so
/// the statement needs no JSON functions of either database.
fn routes_to(routing: &str, shadow: Option<&str>, version: u64) -> Result<bool, serde_json::Error> {
    let routing: Vec<(u64, u32)> = serde_json::from_str(routing)?;
    let shadow: Option<ShadowTarget> = shadow.map(serde_json::from_str).transpose()?;
    Ok(routing.iter().any(|(v, _)| *v == version) || shadow.is_some_and(|s| s.version == version))
}

#[async_trait]
impl FunctionStore for SqlMetadataStore {
    async fn put_version(&self, v: NewVersion) -> Result<FunctionRecord, RegistryError> {
        let now = now_ms();
        let layers = serde_json::to_string(&v.layers)
            .map_err(|e| RegistryError::Storage(format!("layers of '{}': {e}", v.name)))?;
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Function, &v.name).await?;
        let version = int(next(&mut tx, &format!("function:{}", v.name)).await?)?;
        sqlx::query(
            "INSERT INTO functions (name, latest_version, created_at_ms, updated_at_ms) VALUES ($1, 0, $2, $3)
             ON CONFLICT(name) DO NOTHING",
        )
        .bind(&v.name)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO function_versions (function, version, runtime, manifest, code_sha256, code_size, created_at_ms, layers)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&v.name)
        .bind(version)
        .bind(&v.runtime)
        .bind(&v.manifest)
        .bind(&v.code_sha256)
        .bind(int(v.code_size)?)
        .bind(now)
        .bind(layers)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE functions SET latest_version = $1, updated_at_ms = $2 WHERE name = $3")
            .bind(version)
            .bind(now)
            .bind(&v.name)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("{SELECT} WHERE f.name = $1"))
            .bind(&v.name)
            .fetch_one(&mut *tx)
            .await?;
        let rec = record(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn get(&self, name: &str) -> Result<Option<FunctionRecord>, RegistryError> {
        let row = sqlx::query(&format!("{SELECT} WHERE f.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn list(&self) -> Result<Vec<FunctionRecord>, RegistryError> {
        let rows = sqlx::query(&format!("{SELECT} ORDER BY f.name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    async fn get_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<FunctionRecord>, RegistryError> {
        let row = sqlx::query(&format!(
            "{SELECT_VERSION} WHERE function = $1 AND version = $2"
        ))
        .bind(name)
        .bind(int(version)?)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<FunctionRecord>, RegistryError> {
        let rows = sqlx::query(&format!(
            "{SELECT_VERSION} WHERE function = $1 ORDER BY version"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn delete_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<VersionDeleted, RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Function, name).await?;
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT latest_version FROM functions WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if latest == Some(int(version)?) {
            return Ok(VersionDeleted::Latest);
        }
        let mut users = Vec::new();
        for row in sqlx::query(
            "SELECT name, routing, shadow FROM aliases WHERE function = $1 ORDER BY name",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await?
        {
            let alias: String = row.try_get(0)?;
            let routing: String = row.try_get(1)?;
            let shadow: Option<String> = row.try_get(2)?;
            if routes_to(&routing, shadow.as_deref(), version)
                .map_err(|e| RegistryError::Storage(format!("alias '{alias}' of '{name}': {e}")))?
            {
                users.push(alias);
            }
        }
        let url: Option<String> = sqlx::query_scalar(
            "SELECT function FROM function_urls WHERE function = $1 AND qualifier = $2",
        )
        .bind(name)
        .bind(version.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let url = url.map(|_| "URL".to_string());
        let users: Vec<String> = users.into_iter().chain(url).collect();
        if !users.is_empty() {
            return Ok(VersionDeleted::UsedBy(users));
        }
        let done =
            sqlx::query("DELETE FROM function_versions WHERE function = $1 AND version = $2")
                .bind(name)
                .bind(int(version)?)
                .execute(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM provisioned_concurrency WHERE function = $1 AND qualifier = $2")
            .bind(name)
            .bind(version.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() > 0 {
            VersionDeleted::Deleted
        } else {
            VersionDeleted::Missing
        })
    }

    async fn delete(&self, name: &str) -> Result<bool, RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Function, name).await?;
        let done = sqlx::query("DELETE FROM functions WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // A function made again under this name starts over at version 1, as on Lambda.
        sqlx::query("DELETE FROM counters WHERE scope = $1")
            .bind(format!("function:{name}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_config(&self, function: &str) -> Result<Option<String>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT scaling FROM function_config WHERE function = $1")
                .bind(function)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn put_config(&self, function: &str, json: &str) -> Result<(), RegistryError> {
        let statement = sqlx::query(
            "INSERT INTO function_config (function, scaling, updated_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT(function) DO UPDATE SET scaling = excluded.scaling, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(function)
        .bind(json)
        .bind(now_ms());
        self.write(ChangeKind::Config, function, statement).await?;
        Ok(())
    }

    async fn put_event(
        &self,
        function: &str,
        name: &str,
        body: &[u8],
    ) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO test_events (function, name, body, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT(function, name) DO UPDATE SET body = excluded.body, created_at_ms = excluded.created_at_ms")
            .bind(function)
            .bind(name)
            .bind(body)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_event(
        &self,
        function: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT body FROM test_events WHERE function = $1 AND name = $2")
                .bind(function)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list_events(&self, function: &str) -> Result<Vec<String>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM test_events WHERE function = $1 ORDER BY name")
                .bind(function)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

#[async_trait]
impl LayerStore for SqlMetadataStore {
    async fn put_layer(
        &self,
        name: &str,
        code_sha256: &str,
        compressed_size: u64,
        unpacked_size: u64,
        description: &str,
    ) -> Result<LayerRecord, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let version = int(next(&mut tx, &format!("layer:{name}")).await?)?;
        sqlx::query("INSERT INTO layer_versions (name, version, code_sha256, compressed_size, unpacked_size, description, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(name)
            .bind(version)
            .bind(code_sha256)
            .bind(int(compressed_size)?)
            .bind(int(unpacked_size)?)
            .bind(description)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("{SELECT_LAYER} WHERE name = $1 AND version = $2"))
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        let rec = layer_record(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn get_layer(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<LayerRecord>, RegistryError> {
        let row = match version {
            Some(v) => {
                sqlx::query(&format!("{SELECT_LAYER} WHERE name = $1 AND version = $2"))
                    .bind(name)
                    .bind(int(v)?)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!(
                    "{SELECT_LAYER} WHERE name = $1 ORDER BY version DESC LIMIT 1"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.as_ref().map(layer_record).transpose()
    }

    async fn list_layers(&self) -> Result<Vec<LayerRecord>, RegistryError> {
        let rows = sqlx::query(&format!("{SELECT_LAYER} ORDER BY name, version"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(layer_record).collect()
    }
}
