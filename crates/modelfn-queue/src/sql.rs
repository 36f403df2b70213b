//! The queue in SQL through sqlx's `Any` driver, the same statements on both databases:
//! - SQLite, the embedded default: its own file (`queue.db`, WAL, synchronous `FULL` so
//!   an accepted event survives a power cut as well as a `kill -9`), apart from the
//!   metadata store so that events never wait on deploys for the write lock;
//! - PostgreSQL, for a cluster: every node enqueues and leases from one table, and a
//!   lease skips rows another node is leasing (`FOR UPDATE SKIP LOCKED`).
//!
//! A lease is one `UPDATE … RETURNING` over the oldest due events, marked with the
//! leasing node: at its start a node gives back only its own leases; another node's
//! (a node that died) are taken again once they expire.

use crate::{
    now_ms, DeadQuery, EventState, EventStatus, InvocationQueue, Leased, NewEvent, QueueDepth,
    QueueError,
};
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};
use std::path::Path;
use std::time::Duration;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's migrations. The metadata store's share the database and its migrations
/// table, so each set ignores the other's (the queue's versions are `2026…1xxxxx`).
fn postgres_migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations/postgres");
    m.set_ignore_missing(true);
    m
}

/// The queue on SQLite or PostgreSQL.
pub struct SqlQueue {
    pool: AnyPool,
    postgres: bool,
    /// This node's name on its leases.
    node: String,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn uint(row: &AnyRow, col: &str) -> Result<u32, QueueError> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| QueueError::Storage(format!("column {col} holds {v}")))
}

impl SqlQueue {
    /// Opens (creating if needed) the queue's SQLite file, for one node.
    pub async fn open(path: &Path) -> Result<SqlQueue, QueueError> {
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        // Two connections: SQLite writes one at a time anyway, and each connection's
        // thread keeps its own allocator cache of the large payloads it copied.
        let q = Self::connect_with(AnyConnectOptions::from_url(&url)?, 2, "local").await?;
        q.migrate(&path.display().to_string()).await?;
        Ok(q)
    }

    /// Connects to the cluster's queue (`postgres://…`) as node `node` (a name that stays
    /// the node's across restarts), with at most `connections` connections.
    pub async fn connect(url: &str, connections: u32, node: &str) -> Result<SqlQueue, QueueError> {
        let opts: AnyConnectOptions = url
            .parse()
            .map_err(|e| QueueError::Storage(format!("the database URL does not read: {e}")))?;
        let q = Self::connect_with(opts, connections, node).await?;
        q.migrate("the queue's database").await?;
        Ok(q)
    }

    async fn connect_with(
        opts: AnyConnectOptions,
        connections: u32,
        node: &str,
    ) -> Result<SqlQueue, QueueError> {
        sqlx::any::install_default_drivers();
        let postgres = match opts.database_url.scheme() {
            "sqlite" => false,
            "postgres" | "postgresql" => true,
            other => {
                return Err(QueueError::Storage(format!(
                    "unsupported database '{other}://' for the queue"
                )))
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections.max(1))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !postgres {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(|e| QueueError::Storage(format!("connecting to the queue's database: {e}")))?;
        Ok(SqlQueue {
            pool,
            postgres,
            node: node.to_string(),
        })
    }

    /// This node's name, on its leases.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn migrate(&self, what: &str) -> Result<(), QueueError> {
        let result = if self.postgres {
            postgres_migrator().run(&self.pool).await
        } else {
            SQLITE.run(&self.pool).await
        };
        result.map_err(|e| QueueError::Storage(format!("migrating {what}: {e}")))
    }
}

impl SqlQueue {
    /// Stores an event: queued, or (`dead` given: its attempts and why) straight in the
    /// dead-letter store.
    async fn insert(&self, e: NewEvent, dead: Option<(u32, &str)>) -> Result<(), QueueError> {
        let now = now_ms();
        let (state, attempts, error, finished) = match dead {
            None => ("queued", 0, None, None),
            Some((n, why)) => ("dead", n, Some(why), Some(now)),
        };
        let done = sqlx::query(
            "INSERT INTO events (id, function, qualifier, payload, content_type, trace, key_id,
                                 state, attempts, max_attempts, enqueued_ms, expires_ms, not_before_ms,
                                 last_error, finished_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT(id) DO NOTHING",
        )
        .bind(&e.id)
        .bind(&e.function)
        .bind(&e.qualifier)
        // By value: the payload's own buffer when it has the only reference (sqlx would
        // copy a slice).
        .bind(Vec::<u8>::from(e.payload))
        .bind(&e.content_type)
        .bind(&e.trace)
        .bind(&e.key_id)
        .bind(state)
        .bind(i64::from(attempts))
        .bind(i64::from(e.max_attempts.max(1)))
        .bind(now)
        .bind(now.saturating_add(ms(e.max_age)))
        .bind(now)
        .bind(error)
        .bind(finished)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(QueueError::Duplicate(e.id));
        }
        Ok(())
    }

    fn status_of(row: &AnyRow, with_bodies: bool) -> Result<EventStatus, QueueError> {
        let state: String = row.try_get("state")?;
        let version: Option<i64> = row.try_get("version")?;
        let payload_bytes: i64 = row.try_get("payload_bytes")?;
        Ok(EventStatus {
            id: row.try_get("id")?,
            function: row.try_get("function")?,
            qualifier: row.try_get("qualifier")?,
            state: EventState::parse(&state)
                .ok_or_else(|| QueueError::Storage(format!("an event in state {state:?}")))?,
            attempts: uint(row, "attempts")?,
            max_attempts: uint(row, "max_attempts")?,
            enqueued_ms: row.try_get("enqueued_ms")?,
            not_before_ms: row.try_get("not_before_ms")?,
            finished_ms: row.try_get("finished_ms")?,
            last_error: row.try_get("last_error")?,
            version: version.and_then(|v| u64::try_from(v).ok()),
            payload_bytes: u64::try_from(payload_bytes).unwrap_or(0),
            result: row
                .try_get::<Option<Vec<u8>>, _>("result")?
                .map(Bytes::from),
            payload: if with_bodies {
                Some(Bytes::from(row.try_get::<Vec<u8>, _>("payload")?))
            } else {
                None
            },
        })
    }
}

const STATUS_COLUMNS: &str = "id, function, qualifier, state, attempts, max_attempts, enqueued_ms, not_before_ms, finished_ms, last_error, version, length(payload) AS payload_bytes, result";

#[async_trait]
impl InvocationQueue for SqlQueue {
    async fn enqueue(&self, e: NewEvent) -> Result<(), QueueError> {
        self.insert(e, None).await
    }

    async fn bury(&self, e: NewEvent, attempts: u32, error: &str) -> Result<(), QueueError> {
        self.insert(e, Some((attempts, error))).await
    }

    async fn lease(
        &self,
        n: usize,
        lease_for: Duration,
        room: &(dyn for<'a> Fn(&'a str) -> usize + Send + Sync),
    ) -> Result<Vec<Leased>, QueueError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let due = "((state = 'queued' AND not_before_ms <= $1)
                    OR (state = 'leased' AND lease_until_ms < $1))";
        // One transaction: the candidates, locked, then the ones there is room for leased.
        // On PostgreSQL rows another node has locked are skipped, not waited for, so nodes
        // leasing at once take different events; SQLite takes its write lock first.
        let (mut tx, skip_locked) = if self.postgres {
            (self.pool.begin().await?, "FOR UPDATE SKIP LOCKED")
        } else {
            (self.pool.begin_with("BEGIN IMMEDIATE").await?, "")
        };
        let candidates = sqlx::query(&format!(
            "SELECT id, function FROM events WHERE {due} ORDER BY not_before_ms LIMIT $2 {skip_locked}"
        ))
        .bind(now)
        .bind(i64::try_from(n.saturating_mul(4).max(64)).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let mut taken: std::collections::HashMap<String, usize> = Default::default();
        let mut ids: Vec<String> = Vec::new();
        for r in &candidates {
            let function: String = r.try_get("function")?;
            let k = taken.entry(function.clone()).or_insert(0);
            if *k < room(&function) && ids.len() < n {
                *k += 1;
                ids.push(r.try_get("id")?);
            }
        }
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (3..3 + ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "UPDATE events SET state = 'leased', attempts = attempts + 1, lease_until_ms = $1,
                               leased_by = $2
             WHERE id IN ({})
             RETURNING id, function, qualifier, payload, content_type, trace, key_id, attempts,
                       max_attempts, enqueued_ms, expires_ms",
            marks.join(",")
        );
        let mut q = sqlx::query(&sql)
            .bind(now.saturating_add(ms(lease_for)))
            .bind(&self.node);
        for id in &ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(Leased {
                    id: r.try_get("id")?,
                    function: r.try_get("function")?,
                    qualifier: r.try_get("qualifier")?,
                    payload: Bytes::from(r.try_get::<Vec<u8>, _>("payload")?),
                    content_type: r.try_get("content_type")?,
                    trace: r.try_get("trace")?,
                    key_id: r.try_get("key_id")?,
                    attempt: uint(r, "attempts")?,
                    max_attempts: uint(r, "max_attempts")?,
                    enqueued_ms: r.try_get("enqueued_ms")?,
                    expires_ms: r.try_get("expires_ms")?,
                })
            })
            .collect::<Result<Vec<Leased>, QueueError>>()?;
        // RETURNING gives no order: oldest first.
        out.sort_by_key(|l| l.enqueued_ms);
        Ok(out)
    }

    async fn ack(&self, id: &str, version: u64, result: Bytes) -> Result<(), QueueError> {
        // The payload is no longer needed; the answer is kept for its caller to read.
        sqlx::query(
            "UPDATE events SET state = 'succeeded', payload = $1, result = $2, version = $3,
                               finished_ms = $4, lease_until_ms = NULL, last_error = NULL
             WHERE id = $5",
        )
        .bind(Vec::<u8>::new())
        .bind(result.as_ref())
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn nack(
        &self,
        id: &str,
        error: &str,
        retry_in: Duration,
        count_attempt: bool,
    ) -> Result<(), QueueError> {
        sqlx::query(
            "UPDATE events SET state = 'queued', not_before_ms = $1, last_error = $2,
                               lease_until_ms = NULL,
                               attempts = CASE WHEN $3 OR attempts = 0 THEN attempts ELSE attempts - 1 END
             WHERE id = $4",
        )
        .bind(now_ms().saturating_add(ms(retry_in)))
        .bind(error)
        .bind(count_attempt)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn dead_letter(&self, id: &str, error: &str) -> Result<(), QueueError> {
        sqlx::query(
            "UPDATE events SET state = 'dead', last_error = $1, finished_ms = $2, lease_until_ms = NULL
             WHERE id = $3",
        )
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<Option<EventStatus>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS} FROM events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Self::status_of(&r, false)).transpose()
    }

    async fn dead(&self, q: &DeadQuery) -> Result<Vec<EventStatus>, QueueError> {
        let rows = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS}, payload FROM events
             WHERE state = 'dead' AND ($1 IS NULL OR function = $1) AND ($2 IS NULL OR id = $2)
             ORDER BY finished_ms DESC LIMIT $3"
        ))
        .bind(&q.function)
        .bind(&q.id)
        .bind(i64::try_from(q.limit.unwrap_or(100)).unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Self::status_of(r, true)).collect()
    }

    async fn redrive(&self, q: &DeadQuery, max_age: Duration) -> Result<u64, QueueError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE events SET state = 'queued', attempts = 0, not_before_ms = $1,
                               expires_ms = $1 + $2, finished_ms = NULL
             WHERE state = 'dead' AND ($3 IS NULL OR function = $3) AND ($4 IS NULL OR id = $4)",
        )
        .bind(now)
        .bind(ms(max_age))
        .bind(&q.function)
        .bind(&q.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn drop_function(
        &self,
        function: &str,
        dead_letter: Option<&str>,
    ) -> Result<u64, QueueError> {
        let done = match dead_letter {
            Some(why) => {
                sqlx::query(
                    "UPDATE events SET state = 'dead', last_error = $1, finished_ms = $2,
                                       lease_until_ms = NULL
                     WHERE function = $3 AND state IN ('queued', 'leased')",
                )
                .bind(why)
                .bind(now_ms())
                .bind(function)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "DELETE FROM events WHERE function = $1 AND state IN ('queued', 'leased')",
                )
                .bind(function)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected())
    }

    async fn renew(&self, lease_for: Duration) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "UPDATE events SET lease_until_ms = $1 WHERE state = 'leased' AND leased_by = $2",
        )
        .bind(now_ms().saturating_add(ms(lease_for)))
        .bind(&self.node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn recover(&self) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "UPDATE events SET state = 'queued', lease_until_ms = NULL,
                               last_error = 'the server stopped while it ran'
             WHERE state = 'leased' AND (leased_by = $1 OR leased_by IS NULL)",
        )
        .bind(&self.node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn depths(&self) -> Result<Vec<QueueDepth>, QueueError> {
        let rows = sqlx::query(
            "SELECT function,
                    count(CASE WHEN state = 'queued' THEN 1 END) AS queued,
                    count(CASE WHEN state = 'leased' THEN 1 END) AS running,
                    count(CASE WHEN state = 'succeeded' THEN 1 END) AS succeeded,
                    count(CASE WHEN state = 'dead' THEN 1 END) AS dead,
                    count(CASE WHEN state = 'succeeded' AND attempts > 1 THEN 1 END) AS reran,
                    sum(CASE WHEN state IN ('queued', 'leased') THEN length(payload) ELSE 0 END) AS bytes,
                    min(CASE WHEN state IN ('queued', 'leased') THEN enqueued_ms END) AS oldest
             FROM events GROUP BY function ORDER BY function",
        )
        .fetch_all(&self.pool)
        .await?;
        let n = |r: &AnyRow, c: &str| -> Result<u64, QueueError> {
            let v: i64 = r.try_get(c)?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        rows.iter()
            .map(|r| {
                Ok(QueueDepth {
                    function: r.try_get("function")?,
                    queued: n(r, "queued")?,
                    running: n(r, "running")?,
                    succeeded: n(r, "succeeded")?,
                    reran: n(r, "reran")?,
                    dead: n(r, "dead")?,
                    waiting_bytes: n(r, "bytes")?,
                    oldest_ms: r.try_get("oldest")?,
                })
            })
            .collect()
    }

    async fn purge(&self, before_ms: i64, dead_before_ms: i64) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "DELETE FROM events WHERE (state = 'succeeded' AND finished_ms < $1)
                                   OR (state = 'dead' AND enqueued_ms < $2)",
        )
        .bind(before_ms)
        .bind(dead_before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
