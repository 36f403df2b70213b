//! The metadata store in SQLite (sqlx, with migrations embedded in the binary): the
//! embedded default. One file per trait: [`functions`] (functions and layers), [`edge`]
//! (keys, URLs, plans, APIs), [`models`]; the counters and the change log are here.
//!
//! Every column is read with `try_get`: a bad row is a storage error, never a panic and
//! never a silent default.

mod aliases;
mod edge;
mod functions;
mod models;

use crate::metadata::{Change, ChangeKind, ChangeLog, Changes};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::path::Path;
use std::str::FromStr;

/// SQLite, the embedded default.
pub struct SqliteMetadataStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How many changes the log keeps; a reconciler further behind reloads everything.
const CHANGES_KEPT: i64 = 10_000;

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

/// Column `i` of `row` as an unsigned number.
pub(crate) fn uint(row: &SqliteRow, i: usize) -> Result<u64, RegistryError> {
    let v: i64 = row.try_get(i)?;
    u64::try_from(v).map_err(|_| RegistryError::Storage(format!("column {i} holds {v}")))
}

/// Stored sizes and versions are `u64`; SQLite integers are `i64`.
pub(crate) fn int(v: u64) -> Result<i64, RegistryError> {
    i64::try_from(v).map_err(|_| RegistryError::Storage(format!("{v} does not fit a column")))
}

/// Adds one to a counter (creating it at 1) and answers the new value.
pub(crate) async fn next(conn: &mut SqliteConnection, scope: &str) -> Result<u64, RegistryError> {
    let v: i64 = sqlx::query_scalar(
        "INSERT INTO counters (scope, value) VALUES (?, 1)
         ON CONFLICT(scope) DO UPDATE SET value = value + 1 RETURNING value",
    )
    .bind(scope)
    .fetch_one(&mut *conn)
    .await?;
    u64::try_from(v).map_err(|_| RegistryError::Storage(format!("counter {scope} is {v}")))
}

/// Records a change in the caller's transaction. Call it first: it takes SQLite's write
/// lock at once, so the transaction never has to upgrade a read lock (which would fail
/// with SQLITE_BUSY under concurrent writers).
pub(crate) async fn record_change(
    conn: &mut SqliteConnection,
    kind: ChangeKind,
    name: &str,
) -> Result<u64, RegistryError> {
    let generation = next(conn, "generation").await?;
    sqlx::query("INSERT INTO changes (generation, kind, name, at_ms) VALUES (?, ?, ?, ?)")
        .bind(int(generation)?)
        .bind(kind.as_str())
        .bind(name)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM changes WHERE generation <= ?")
        .bind(int(generation)? - CHANGES_KEPT)
        .execute(&mut *conn)
        .await?;
    Ok(generation)
}

impl SqliteMetadataStore {
    /// Runs one statement that changes `name` of `kind`, with its change recorded, in one
    /// transaction; answers the rows it affected.
    async fn write<'q>(
        &self,
        kind: ChangeKind,
        name: &str,
        statement: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<u64, RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, kind, name).await?;
        let done = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

fn change(row: &SqliteRow) -> Result<Change, RegistryError> {
    let kind: String = row.try_get(1)?;
    Ok(Change {
        generation: uint(row, 0)?,
        kind: ChangeKind::parse(&kind)
            .ok_or_else(|| RegistryError::Storage(format!("unknown change kind {kind:?}")))?,
        name: row.try_get(2)?,
    })
}

#[async_trait]
impl ChangeLog for SqliteMetadataStore {
    async fn generation(&self) -> Result<u64, RegistryError> {
        let g: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE scope = 'generation'")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(g).map_err(|_| RegistryError::Storage(format!("generation is {g}")))
    }

    async fn changes_since(&self, generation: u64, limit: u32) -> Result<Changes, RegistryError> {
        // One read transaction: the counter and the log from the same snapshot.
        let mut tx = self.pool.begin().await?;
        let current: i64 =
            sqlx::query_scalar("SELECT value FROM counters WHERE scope = 'generation'")
                .fetch_one(&mut *tx)
                .await?;
        let current = u64::try_from(current).unwrap_or(0);
        if current <= generation {
            tx.commit().await?;
            return Ok(Changes {
                generation: current,
                changes: Vec::new(),
                complete: current == generation,
            });
        }
        let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(generation) FROM changes")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT generation, kind, name FROM changes WHERE generation > ? ORDER BY generation LIMIT ?",
        )
        .bind(int(generation)?)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let changes = rows.iter().map(change).collect::<Result<Vec<_>, _>>()?;
        let from = int(generation)? + 1;
        let complete = oldest.is_some_and(|o| o <= from);
        let generation = if changes.len() == limit as usize {
            changes.last().map_or(current, |c| c.generation)
        } else {
            current
        };
        Ok(Changes {
            generation,
            changes,
            complete,
        })
    }
}
