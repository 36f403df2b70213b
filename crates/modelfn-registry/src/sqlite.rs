//! The metadata store in SQLite (sqlx, with migrations embedded in the binary): the
//! embedded default.

use crate::metadata::{FunctionRecord, LayerRecord, MetadataStore, NewVersion};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;

/// SQLite, the embedded default.
pub struct SqliteMetadataStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const SELECT: &str = "SELECT f.name, f.latest_version, v.runtime, v.manifest, v.code_sha256, v.code_size, f.created_at_ms, f.updated_at_ms, v.layers
     FROM functions f JOIN function_versions v ON v.function = f.name AND v.version = f.latest_version";

impl SqliteMetadataStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, RegistryError> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| RegistryError::Storage(format!("migrating {}: {e}", path.display())))?;
        Ok(SqliteMetadataStore { pool })
    }
}

/// Tables of named documents: `(name, definition, updated_at_ms)`.
#[derive(Clone, Copy)]
enum Docs {
    Plans,
    Apis,
}

impl Docs {
    fn table(self) -> &'static str {
        match self {
            Docs::Plans => "usage_plans",
            Docs::Apis => "apis",
        }
    }
}

impl SqliteMetadataStore {
    async fn list_docs(&self, docs: Docs) -> Result<Vec<(String, String)>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT name, definition FROM {} ORDER BY name",
            docs.table()
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn put_doc(&self, docs: Docs, name: &str, definition: &str) -> Result<(), RegistryError> {
        sqlx::query(&format!(
            "INSERT INTO {} (name, definition, updated_at_ms) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, updated_at_ms = excluded.updated_at_ms",
            docs.table()
        ))
        .bind(name)
        .bind(definition)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_doc(&self, docs: Docs, name: &str) -> Result<bool, RegistryError> {
        let done = sqlx::query(&format!("DELETE FROM {} WHERE name = ?", docs.table()))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn record(row: &sqlx::sqlite::SqliteRow) -> FunctionRecord {
    FunctionRecord {
        name: row.get(0),
        version: row.get::<i64, _>(1) as u64,
        runtime: row.get(2),
        manifest: row.get(3),
        code_sha256: row.get(4),
        code_size: row.get::<i64, _>(5) as u64,
        created_at_ms: row.get(6),
        updated_at_ms: row.get(7),
        layers: serde_json::from_str(&row.get::<String, _>(8)).unwrap_or_default(),
    }
}

fn layer_record(row: &sqlx::sqlite::SqliteRow) -> LayerRecord {
    LayerRecord {
        name: row.get(0),
        version: row.get::<i64, _>(1) as u64,
        code_sha256: row.get(2),
        compressed_size: row.get::<i64, _>(3) as u64,
        unpacked_size: row.get::<i64, _>(4) as u64,
        description: row.get(5),
        created_at_ms: row.get(6),
    }
}

const SELECT_LAYER: &str = "SELECT name, version, code_sha256, compressed_size, unpacked_size, description, created_at_ms FROM layer_versions";

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn put_version(&self, v: NewVersion) -> Result<FunctionRecord, RegistryError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT latest_version FROM functions WHERE name = ?")
                .bind(&v.name)
                .fetch_optional(&mut *tx)
                .await?;
        let version = match current {
            Some(n) => {
                // Versions are never reused, even after the latest is replaced.
                let max: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) FROM function_versions WHERE function = ?",
                )
                .bind(&v.name)
                .fetch_one(&mut *tx)
                .await?;
                max.max(n) + 1
            }
            None => {
                sqlx::query("INSERT INTO functions (name, latest_version, created_at_ms, updated_at_ms) VALUES (?, 0, ?, ?)")
                    .bind(&v.name)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                1
            }
        };
        sqlx::query(
            "INSERT INTO function_versions (function, version, runtime, manifest, code_sha256, code_size, created_at_ms, layers)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&v.name)
        .bind(version)
        .bind(&v.runtime)
        .bind(&v.manifest)
        .bind(&v.code_sha256)
        .bind(v.code_size as i64)
        .bind(now)
        .bind(serde_json::to_string(&v.layers).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE functions SET latest_version = ?, updated_at_ms = ? WHERE name = ?")
            .bind(version)
            .bind(now)
            .bind(&v.name)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("{SELECT} WHERE f.name = ?"))
            .bind(&v.name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(record(&row))
    }

    async fn get(&self, name: &str) -> Result<Option<FunctionRecord>, RegistryError> {
        let row = sqlx::query(&format!("{SELECT} WHERE f.name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(record))
    }

    async fn list(&self) -> Result<Vec<FunctionRecord>, RegistryError> {
        let rows = sqlx::query(&format!("{SELECT} ORDER BY f.name"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(record).collect())
    }

    async fn delete(&self, name: &str) -> Result<bool, RegistryError> {
        let done = sqlx::query("DELETE FROM functions WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_layer(
        &self,
        name: &str,
        code_sha256: &str,
        compressed_size: u64,
        unpacked_size: u64,
        description: &str,
    ) -> Result<LayerRecord, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM layer_versions WHERE name = ?",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO layer_versions (name, version, code_sha256, compressed_size, unpacked_size, description, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(name)
            .bind(version)
            .bind(code_sha256)
            .bind(compressed_size as i64)
            .bind(unpacked_size as i64)
            .bind(description)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!("{SELECT_LAYER} WHERE name = ? AND version = ?"))
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(layer_record(&row))
    }

    async fn get_layer(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Result<Option<LayerRecord>, RegistryError> {
        let row = match version {
            Some(v) => {
                sqlx::query(&format!("{SELECT_LAYER} WHERE name = ? AND version = ?"))
                    .bind(name)
                    .bind(v as i64)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!(
                    "{SELECT_LAYER} WHERE name = ? ORDER BY version DESC LIMIT 1"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        Ok(row.as_ref().map(layer_record))
    }

    async fn list_layers(&self) -> Result<Vec<LayerRecord>, RegistryError> {
        let rows = sqlx::query(&format!("{SELECT_LAYER} ORDER BY name, version"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(layer_record).collect())
    }

    async fn put_event(
        &self,
        function: &str,
        name: &str,
        body: &[u8],
    ) -> Result<(), RegistryError> {
        sqlx::query("INSERT INTO test_events (function, name, body, created_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT(function, name) DO UPDATE SET body = excluded.body, created_at_ms = excluded.created_at_ms")
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
            sqlx::query_scalar("SELECT body FROM test_events WHERE function = ? AND name = ?")
                .bind(function)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list_events(&self, function: &str) -> Result<Vec<String>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM test_events WHERE function = ? ORDER BY name")
                .bind(function)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn put_access_key(
        &self,
        id: &str,
        name: &str,
        secret: &str,
        api_key_sha256: &str,
    ) -> Result<(), RegistryError> {
        let hash = api_key_sha256;
        sqlx::query("INSERT INTO access_keys (access_key_id, name, secret, created_at_ms, secret_sha256) VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(secret)
            .bind(now_ms())
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_access_key_secret(&self, id: &str, secret: &str) -> Result<(), RegistryError> {
        sqlx::query("UPDATE access_keys SET secret = ? WHERE access_key_id = ?")
            .bind(secret)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn access_key_secret(&self, id: &str) -> Result<Option<String>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM access_keys WHERE access_key_id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list_access_keys(&self) -> Result<Vec<(String, String, i64)>, RegistryError> {
        let rows = sqlx::query(
            "SELECT access_key_id, name, created_at_ms FROM access_keys ORDER BY created_at_ms",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    async fn delete_access_key(&self, id: &str) -> Result<bool, RegistryError> {
        let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn access_key_by_secret_hash(
        &self,
        sha256_hex: &str,
    ) -> Result<Option<String>, RegistryError> {
        Ok(sqlx::query_scalar(
            "SELECT access_key_id FROM access_keys WHERE secret_sha256 = ? AND secret_sha256 != ''",
        )
        .bind(sha256_hex)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn list_urls(&self) -> Result<Vec<(String, String)>, RegistryError> {
        let rows = sqlx::query("SELECT function, auth FROM function_urls ORDER BY function")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn put_url(&self, function: &str, auth: &str) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO function_urls (function, auth, created_at_ms) VALUES (?, ?, ?)
             ON CONFLICT(function) DO UPDATE SET auth = excluded.auth",
        )
        .bind(function)
        .bind(auth)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_url(&self, function: &str) -> Result<bool, RegistryError> {
        let done = sqlx::query("DELETE FROM function_urls WHERE function = ?")
            .bind(function)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_plans(&self) -> Result<Vec<(String, String)>, RegistryError> {
        self.list_docs(Docs::Plans).await
    }

    async fn put_plan(&self, name: &str, definition: &str) -> Result<(), RegistryError> {
        self.put_doc(Docs::Plans, name, definition).await
    }

    async fn delete_plan(&self, name: &str) -> Result<bool, RegistryError> {
        self.delete_doc(Docs::Plans, name).await
    }

    async fn list_apis(&self) -> Result<Vec<(String, String)>, RegistryError> {
        self.list_docs(Docs::Apis).await
    }

    async fn put_api(&self, name: &str, definition: &str) -> Result<(), RegistryError> {
        self.put_doc(Docs::Apis, name, definition).await
    }

    async fn delete_api(&self, name: &str) -> Result<bool, RegistryError> {
        self.delete_doc(Docs::Apis, name).await
    }

    async fn get_config(&self, function: &str) -> Result<Option<String>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT scaling FROM function_config WHERE function = ?")
                .bind(function)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn put_config(&self, function: &str, json: &str) -> Result<(), RegistryError> {
        sqlx::query(
            "INSERT INTO function_config (function, scaling, updated_at_ms) VALUES (?, ?, ?)
             ON CONFLICT(function) DO UPDATE SET scaling = excluded.scaling, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(function)
        .bind(json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
