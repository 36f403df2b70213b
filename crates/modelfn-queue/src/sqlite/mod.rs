//! The queue in SQLite: its own database file (`queue.db`, WAL, synchronous `FULL` so an
//! accepted event survives a power cut as well as a `kill -9`), apart from the metadata
//! store so that events never wait on deploys for the write lock. A lease is one
//! `UPDATE … RETURNING` over the oldest due events.

use crate::{
    now_ms, DeadQuery, EventState, EventStatus, InvocationQueue, Leased, NewEvent, QueueDepth,
    QueueError,
};
use async_trait::async_trait;
use bytes::Bytes;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteQueue {
    pool: SqlitePool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn uint(row: &SqliteRow, col: &str) -> Result<u32, QueueError> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| QueueError::Storage(format!("column {col} holds {v}")))
}

impl SqliteQueue {
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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

    /// Opens (creating if needed) the queue's database file.
    pub async fn open(path: &Path) -> Result<SqliteQueue, QueueError> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        // Two connections: SQLite writes one at a time anyway, and each connection's
        // thread keeps its own allocator cache of the large payloads it copied.
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| QueueError::Storage(format!("migrating {}: {e}", path.display())))?;
        Ok(SqliteQueue { pool })
    }

    fn status_of(row: &SqliteRow, with_bodies: bool) -> Result<EventStatus, QueueError> {
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
impl InvocationQueue for SqliteQueue {
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
        // Plain `?` only (sqlx binds in order): `now` is bound twice for it.
        let due = "((state = 'queued' AND not_before_ms <= ?)
                    OR (state = 'leased' AND lease_until_ms < ?))";
        // First the candidates, without their payloads; then the ones there is room for.
        let candidates = sqlx::query(&format!(
            "SELECT id, function FROM events WHERE {due} ORDER BY not_before_ms LIMIT ?"
        ))
        .bind(now)
        .bind(now)
        .bind(i64::try_from(n.saturating_mul(4).max(64)).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
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
            return Ok(Vec::new());
        }
        // Due is checked again: another worker (or node) may have leased one meanwhile.
        let marks = vec!["?"; ids.len()].join(",");
        let sql = format!(
            "UPDATE events SET state = 'leased', attempts = attempts + 1, lease_until_ms = ?
             WHERE {due} AND id IN ({marks})
             RETURNING id, function, qualifier, payload, content_type, trace, key_id, attempts,
                       max_attempts, enqueued_ms, expires_ms"
        );
        let mut q = sqlx::query(&sql)
            .bind(now.saturating_add(ms(lease_for)))
            .bind(now)
            .bind(now);
        for id in &ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
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
            "UPDATE events SET state = 'succeeded', payload = x'', result = ?, version = ?,
                               finished_ms = ?, lease_until_ms = NULL, last_error = NULL
             WHERE id = ?",
        )
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
            "UPDATE events SET state = 'queued', not_before_ms = ?, last_error = ?,
                               lease_until_ms = NULL,
                               attempts = CASE WHEN ? THEN attempts ELSE max(attempts - 1, 0) END
             WHERE id = ?",
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
            "UPDATE events SET state = 'dead', last_error = ?, finished_ms = ?, lease_until_ms = NULL
             WHERE id = ?",
        )
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<Option<EventStatus>, QueueError> {
        let row = sqlx::query(&format!("SELECT {STATUS_COLUMNS} FROM events WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Self::status_of(&r, false)).transpose()
    }

    async fn dead(&self, q: &DeadQuery) -> Result<Vec<EventStatus>, QueueError> {
        let rows = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS}, payload FROM events
             WHERE state = 'dead' AND (?1 IS NULL OR function = ?1) AND (?2 IS NULL OR id = ?2)
             ORDER BY finished_ms DESC LIMIT ?3"
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
            "UPDATE events SET state = 'queued', attempts = 0, not_before_ms = ?1,
                               expires_ms = ?1 + ?2, finished_ms = NULL
             WHERE state = 'dead' AND (?3 IS NULL OR function = ?3) AND (?4 IS NULL OR id = ?4)",
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
                    "UPDATE events SET state = 'dead', last_error = ?, finished_ms = ?,
                                       lease_until_ms = NULL
                     WHERE function = ? AND state IN ('queued', 'leased')",
                )
                .bind(why)
                .bind(now_ms())
                .bind(function)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "DELETE FROM events WHERE function = ? AND state IN ('queued', 'leased')",
                )
                .bind(function)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected())
    }

    async fn recover(&self) -> Result<u64, QueueError> {
        let done = sqlx::query(
            "UPDATE events SET state = 'queued', lease_until_ms = NULL,
                               last_error = 'the server stopped while it ran'
             WHERE state = 'leased'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn depths(&self) -> Result<Vec<QueueDepth>, QueueError> {
        let rows = sqlx::query(
            "SELECT function,
                    sum(state = 'queued') AS queued, sum(state = 'leased') AS running,
                    sum(state = 'succeeded') AS succeeded, sum(state = 'dead') AS dead,
                    sum(state = 'succeeded' AND attempts > 1) AS reran,
                    sum(CASE WHEN state IN ('queued', 'leased') THEN length(payload) ELSE 0 END) AS bytes,
                    min(CASE WHEN state IN ('queued', 'leased') THEN enqueued_ms END) AS oldest
             FROM events GROUP BY function ORDER BY function",
        )
        .fetch_all(&self.pool)
        .await?;
        let n = |r: &SqliteRow, c: &str| -> Result<u64, QueueError> {
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
            "DELETE FROM events WHERE (state = 'succeeded' AND finished_ms < ?)
                                   OR (state = 'dead' AND enqueued_ms < ?)",
        )
        .bind(before_ms)
        .bind(dead_before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests;
