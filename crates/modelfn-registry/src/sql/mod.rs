//! The metadata store in SQL through sqlx's `Any` driver: SQLite (the embedded default)
//! or PostgreSQL (for many nodes), the same statements on both, with migrations for each
//! embedded in the binary. One file per trait: [`functions`] (functions and layers),
//! [`edge`] (keys, URLs, plans, APIs), [`aliases`], [`models`]; the counters and the
//! change log are here.
//!
//! The statements are written in the SQL both accept: `$N` parameters, `ON CONFLICT`
//! upserts, `RETURNING`, integers as 64-bit, no JSON functions (JSON columns are read in
//! Rust). Every column is read with `try_get`: a bad row is a storage error, never a panic
//! and never a silent default.

mod aliases;
mod edge;
mod functions;
mod models;
mod nodes;
mod watch;

pub use watch::{ChangeWatch, CHANNEL};

use crate::metadata::{Change, ChangeKind, ChangeLog, Changes};
use crate::{now_ms, RegistryError};
use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Row};
use std::path::Path;

/// The metadata store on SQLite or PostgreSQL.
pub struct SqlMetadataStore {
    pool: AnyPool,
    backend: Backend,
    /// PostgreSQL's URL, for the connection that listens for changes.
    url: Option<String>,
}

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's migrations. The queue's share the database and its migrations table
/// (with their own version numbers, `2026…1xxxxx`), so each set ignores the other's.
fn postgres_migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations/postgres");
    m.set_ignore_missing(true);
    m
}

/// How many changes the log keeps; a reconciler further behind reloads everything.
const CHANGES_KEPT: i64 = 10_000;

impl SqlMetadataStore {
    /// Opens (creating if needed) an SQLite database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, RegistryError> {
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        let store = Self::connect_with(&AnyConnectOptions::from_url(&url)?, 4).await?;
        // WAL lets readers run beside the writer; it is recorded in the file.
        sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_all(&store.pool)
            .await?;
        store.migrate(&path.display().to_string()).await?;
        Ok(store)
    }

    /// Connects to a database by URL (`postgres://user:password@host/db`, or
    /// `sqlite://path`), with at most `connections` connections, and applies migrations.
    /// Nodes migrating at once are serialized by the migrator's lock.
    pub async fn connect(url: &str, connections: u32) -> Result<Self, RegistryError> {
        let opts: AnyConnectOptions = url
            .parse()
            .map_err(|e| RegistryError::Storage(format!("the database URL does not read: {e}")))?;
        let mut store = Self::connect_with(&opts, connections).await?;
        store.migrate(&redact(url)).await?;
        store.url = Some(url.to_string());
        Ok(store)
    }

    async fn connect_with(
        opts: &AnyConnectOptions,
        connections: u32,
    ) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let backend = match opts.database_url.scheme() {
            "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" => Backend::Postgres,
            other => {
                return Err(RegistryError::Storage(format!(
                    "unsupported database '{other}://': use postgres:// or sqlite://"
                )))
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections.max(1))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(opts.clone())
            .await
            .map_err(|e| {
                RegistryError::Storage(format!(
                    "connecting to {}: {e}",
                    redact(opts.database_url.as_str())
                ))
            })?;
        Ok(SqlMetadataStore {
            pool,
            backend,
            url: None,
        })
    }

    async fn migrate(&self, what: &str) -> Result<(), RegistryError> {
        let result = match self.backend {
            Backend::Sqlite => SQLITE.run(&self.pool).await,
            Backend::Postgres => postgres_migrator().run(&self.pool).await,
        };
        result.map_err(|e| RegistryError::Storage(format!("migrating {what}: {e}")))
    }

    /// Which database this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url.parse::<AnyConnectOptions>() {
        Ok(mut o) => {
            if o.database_url.password().is_some() {
                let _ = o.database_url.set_password(Some("***"));
            }
            o.database_url.to_string()
        }
        Err(_) => "the database URL".to_string(),
    }
}

/// Column `i` of `row` as an unsigned number.
pub(crate) fn uint(row: &AnyRow, i: usize) -> Result<u64, RegistryError> {
    let v: i64 = row.try_get(i)?;
    u64::try_from(v).map_err(|_| RegistryError::Storage(format!("column {i} holds {v}")))
}

/// Stored sizes and versions are `u64`; SQLite integers are `i64`.
pub(crate) fn int(v: u64) -> Result<i64, RegistryError> {
    i64::try_from(v).map_err(|_| RegistryError::Storage(format!("{v} does not fit a column")))
}

/// Adds one to a counter (creating it at 1) and answers the new value.
pub(crate) async fn next(conn: &mut AnyConnection, scope: &str) -> Result<u64, RegistryError> {
    let v: i64 = sqlx::query_scalar(
        "INSERT INTO counters (scope, value) VALUES ($1, 1)
         ON CONFLICT(scope) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(scope)
    .fetch_one(&mut *conn)
    .await?;
    u64::try_from(v).map_err(|_| RegistryError::Storage(format!("counter {scope} is {v}")))
}

/// Records a change in the caller's transaction. Call it first: it takes the write lock at
/// once (SQLite's database lock, PostgreSQL's lock on the generation row), so writers are
/// serialized for the rest of the transaction, and an SQLite transaction never has to
/// upgrade a read lock (which would fail with SQLITE_BUSY under concurrent writers).
pub(crate) async fn record_change(
    conn: &mut AnyConnection,
    kind: ChangeKind,
    name: &str,
) -> Result<u64, RegistryError> {
    let generation = next(conn, "generation").await?;
    sqlx::query("INSERT INTO changes (generation, kind, name, at_ms) VALUES ($1, $2, $3, $4)")
        .bind(int(generation)?)
        .bind(kind.as_str())
        .bind(name)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM changes WHERE generation <= $1")
        .bind(int(generation)? - CHANGES_KEPT)
        .execute(&mut *conn)
        .await?;
    Ok(generation)
}

impl SqlMetadataStore {
    /// Runs one statement that changes `name` of `kind`, with its change recorded, in one
    /// transaction; answers the rows it affected.
    async fn write<'q>(
        &self,
        kind: ChangeKind,
        name: &str,
        statement: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<u64, RegistryError> {
        let mut tx = self.pool.begin().await?;
        record_change(&mut tx, kind, name).await?;
        let done = statement.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

fn change(row: &AnyRow) -> Result<Change, RegistryError> {
    let kind: String = row.try_get(1)?;
    Ok(Change {
        generation: uint(row, 0)?,
        kind: ChangeKind::parse(&kind)
            .ok_or_else(|| RegistryError::Storage(format!("unknown change kind {kind:?}")))?,
        name: row.try_get(2)?,
    })
}

#[async_trait]
impl ChangeLog for SqlMetadataStore {
    async fn generation(&self) -> Result<u64, RegistryError> {
        let g: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE scope = 'generation'")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(g).map_err(|_| RegistryError::Storage(format!("generation is {g}")))
    }

    async fn changes_since(&self, generation: u64, limit: u32) -> Result<Changes, RegistryError> {
        // The counter first, then the log up to it: a change committed between the two
        // reads (PostgreSQL's statements each see the latest commits) waits for the next
        // call. Generations commit in order, as each writer holds the counter's row.
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
            "SELECT generation, kind, name FROM changes WHERE generation > $1 AND generation <= $2
             ORDER BY generation LIMIT $3",
        )
        .bind(int(generation)?)
        .bind(int(current)?)
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
