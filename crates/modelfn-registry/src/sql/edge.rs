//! Access keys, function URLs, usage plans and APIs in SQL.

use super::SqlMetadataStore;
use crate::metadata::{AccessKeyRecord, ChangeKind, DocRecord, EdgeStore, UrlAuth, UrlRecord};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::Row;

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

    fn kind(self) -> ChangeKind {
        match self {
            Docs::Plans => ChangeKind::Plan,
            Docs::Apis => ChangeKind::Api,
        }
    }
}

impl SqlMetadataStore {
    async fn list_docs(&self, docs: Docs) -> Result<Vec<DocRecord>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT name, definition FROM {} ORDER BY name",
            docs.table()
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DocRecord {
                    name: r.try_get(0)?,
                    definition: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn put_doc(&self, docs: Docs, doc: &DocRecord) -> Result<(), RegistryError> {
        let sql = format!(
            "INSERT INTO {} (name, definition, updated_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, updated_at_ms = excluded.updated_at_ms",
            docs.table()
        );
        let statement = sqlx::query(&sql)
            .bind(&doc.name)
            .bind(&doc.definition)
            .bind(now_ms());
        self.write(docs.kind(), &doc.name, statement).await?;
        Ok(())
    }

    async fn delete_doc(&self, docs: Docs, name: &str) -> Result<bool, RegistryError> {
        let sql = format!("DELETE FROM {} WHERE name = $1", docs.table());
        let statement = sqlx::query(&sql).bind(name);
        Ok(self.write(docs.kind(), name, statement).await? > 0)
    }
}

#[async_trait]
impl EdgeStore for SqlMetadataStore {
    async fn put_access_key(
        &self,
        id: &str,
        name: &str,
        secret: &str,
        api_key_sha256: &str,
        manage: bool,
    ) -> Result<(), RegistryError> {
        let statement = sqlx::query("INSERT INTO access_keys (access_key_id, name, secret, created_at_ms, secret_sha256, manage) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(name)
            .bind(secret)
            .bind(now_ms())
            .bind(api_key_sha256)
            .bind(i64::from(manage));
        self.write(ChangeKind::Key, id, statement).await?;
        Ok(())
    }

    async fn update_access_key_secret(&self, id: &str, secret: &str) -> Result<(), RegistryError> {
        let statement = sqlx::query("UPDATE access_keys SET secret = $1 WHERE access_key_id = $2")
            .bind(secret)
            .bind(id);
        self.write(ChangeKind::Key, id, statement).await?;
        Ok(())
    }

    async fn access_key_secret(&self, id: &str) -> Result<Option<String>, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM access_keys WHERE access_key_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, RegistryError> {
        let rows = sqlx::query(
            "SELECT access_key_id, name, created_at_ms, manage FROM access_keys ORDER BY created_at_ms",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccessKeyRecord {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    created_at_ms: r.try_get(2)?,
                    manage: r.try_get::<i64, _>(3)? != 0,
                })
            })
            .collect()
    }

    async fn delete_access_key(&self, id: &str) -> Result<bool, RegistryError> {
        let statement = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1").bind(id);
        Ok(self.write(ChangeKind::Key, id, statement).await? > 0)
    }

    async fn access_key_by_secret_hash(
        &self,
        sha256_hex: &str,
    ) -> Result<Option<String>, RegistryError> {
        Ok(sqlx::query_scalar(
            "SELECT access_key_id FROM access_keys WHERE secret_sha256 = $1 AND secret_sha256 != ''",
        )
        .bind(sha256_hex)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn list_urls(&self) -> Result<Vec<UrlRecord>, RegistryError> {
        let rows =
            sqlx::query("SELECT function, auth, qualifier FROM function_urls ORDER BY function")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let auth: String = r.try_get(1)?;
                Ok(UrlRecord {
                    function: r.try_get(0)?,
                    auth: UrlAuth::parse(&auth).ok_or_else(|| {
                        RegistryError::Storage(format!("unknown URL auth {auth:?}"))
                    })?,
                    qualifier: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn put_url(&self, url: &UrlRecord) -> Result<(), RegistryError> {
        let statement = sqlx::query(
            "INSERT INTO function_urls (function, auth, created_at_ms, qualifier) VALUES ($1, $2, $3, $4)
             ON CONFLICT(function) DO UPDATE SET auth = excluded.auth, qualifier = excluded.qualifier",
        )
        .bind(&url.function)
        .bind(url.auth.as_str())
        .bind(now_ms())
        .bind(&url.qualifier);
        self.write(ChangeKind::Url, &url.function, statement)
            .await?;
        Ok(())
    }

    async fn delete_url(&self, function: &str) -> Result<bool, RegistryError> {
        let statement = sqlx::query("DELETE FROM function_urls WHERE function = $1").bind(function);
        Ok(self.write(ChangeKind::Url, function, statement).await? > 0)
    }

    fn shared(&self) -> bool {
        matches!(self.backend, super::Backend::Postgres)
    }

    async fn take_quota(
        &self,
        plan: &str,
        key: &str,
        period: &str,
        want: u64,
        quota: u64,
    ) -> Result<u64, RegistryError> {
        if quota == 0 || want == 0 {
            return Ok(0);
        }
        // SET's right-hand sides read the row as it was, so `prev` keeps the count before
        // this statement and the grant is the difference.
        let row = sqlx::query(
            "INSERT INTO quota_usage (plan, key_id, period, used, prev)
             VALUES ($1, $2, $3, CASE WHEN $4 <= $5 THEN $4 ELSE $5 END, 0)
             ON CONFLICT (plan, key_id, period) DO UPDATE SET prev = quota_usage.used,
               used = CASE WHEN quota_usage.used + $4 <= $5 THEN quota_usage.used + $4 ELSE $5 END
             WHERE quota_usage.used < $5
             RETURNING prev, used",
        )
        .bind(plan)
        .bind(key)
        .bind(period)
        .bind(super::int(want)?)
        .bind(super::int(quota)?)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(0);
        };
        let (prev, used) = (super::uint(&row, 0)?, super::uint(&row, 1)?);
        Ok(used.saturating_sub(prev))
    }

    async fn list_plans(&self) -> Result<Vec<DocRecord>, RegistryError> {
        self.list_docs(Docs::Plans).await
    }

    async fn put_plan(&self, plan: &DocRecord) -> Result<(), RegistryError> {
        self.put_doc(Docs::Plans, plan).await
    }

    async fn delete_plan(&self, name: &str) -> Result<bool, RegistryError> {
        self.delete_doc(Docs::Plans, name).await
    }

    async fn list_apis(&self) -> Result<Vec<DocRecord>, RegistryError> {
        self.list_docs(Docs::Apis).await
    }

    async fn put_api(&self, api: &DocRecord) -> Result<(), RegistryError> {
        self.put_doc(Docs::Apis, api).await
    }

    async fn delete_api(&self, name: &str) -> Result<bool, RegistryError> {
        self.delete_doc(Docs::Apis, name).await
    }
}
