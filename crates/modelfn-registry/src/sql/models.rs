//! The model store's records in SQL: revisions of named models, and each model's
//! current revision.

use super::{int, next, record_change, uint, SqlMetadataStore};
use crate::metadata::{ChangeKind, ModelHead, ModelRecord, ModelStore};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

const COLUMNS: &str = "name, revision, sha256, size, description, created_at_ms, created_by";

fn model(row: &AnyRow) -> Result<ModelRecord, RegistryError> {
    Ok(ModelRecord {
        name: row.try_get(0)?,
        revision: uint(row, 1)?,
        sha256: row.try_get(2)?,
        size: uint(row, 3)?,
        description: row.try_get(4)?,
        created_at_ms: row.try_get(5)?,
        created_by: row.try_get(6)?,
    })
}

#[async_trait]
impl ModelStore for SqlMetadataStore {
    async fn add_model_revision(
        &self,
        name: &str,
        sha256: &str,
        size: u64,
        description: &str,
        by: &str,
    ) -> Result<ModelRecord, RegistryError> {
        let mut tx = self.pool.begin().await?;
        let revision = next(&mut tx, &format!("model:{name}")).await?;
        let record = ModelRecord {
            name: name.to_string(),
            revision,
            sha256: sha256.to_string(),
            size,
            description: description.to_string(),
            created_at_ms: now_ms(),
            created_by: by.to_string(),
        };
        sqlx::query(&format!(
            "INSERT INTO models ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&record.name)
        .bind(int(revision)?)
        .bind(&record.sha256)
        .bind(int(size)?)
        .bind(&record.description)
        .bind(record.created_at_ms)
        .bind(&record.created_by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_model(
        &self,
        name: &str,
        revision: Option<u64>,
    ) -> Result<Option<ModelRecord>, RegistryError> {
        let row = match revision {
            Some(r) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM models WHERE name = $1 AND revision = $2"
                ))
                .bind(name)
                .bind(int(r)?)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT m.name, m.revision, m.sha256, m.size, m.description, m.created_at_ms, m.created_by
                     FROM models m JOIN model_heads h ON h.name = m.name AND h.revision = m.revision
                     WHERE m.name = $1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.as_ref().map(model).transpose()
    }

    async fn list_model_revisions(&self, name: &str) -> Result<Vec<ModelRecord>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM models WHERE name = $1 ORDER BY revision"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(model).collect()
    }

    async fn list_model_heads(&self) -> Result<Vec<ModelHead>, RegistryError> {
        let rows = sqlx::query(
            "SELECT name, revision, updated_at_ms, updated_by FROM model_heads ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ModelHead {
                    name: row.try_get(0)?,
                    revision: uint(row, 1)?,
                    updated_at_ms: row.try_get(2)?,
                    updated_by: row.try_get(3)?,
                })
            })
            .collect()
    }

    async fn set_model_head(
        &self,
        name: &str,
        revision: u64,
        by: &str,
    ) -> Result<(), RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, ChangeKind::Model, name).await?;
        let found: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM models WHERE name = $1 AND revision = $2")
                .bind(name)
                .bind(int(revision)?)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Err(RegistryError::Conflict(format!(
                "model '{name}' has no revision {revision}"
            )));
        }
        sqlx::query(
            "INSERT INTO model_heads (name, revision, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT(name) DO UPDATE SET revision = excluded.revision,
               updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by",
        )
        .bind(name)
        .bind(int(revision)?)
        .bind(now_ms())
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
