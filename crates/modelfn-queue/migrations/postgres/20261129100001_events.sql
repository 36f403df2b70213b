-- Asynchronous invocations on PostgreSQL, shared by every node of a cluster: the same
-- columns and meaning as the SQLite migrations (see migrations/sqlite), in one step.
CREATE TABLE events (
    id             TEXT PRIMARY KEY,        -- the request id
    function       TEXT NOT NULL,
    qualifier      TEXT NOT NULL,           -- $LATEST, a version or an alias
    payload        BYTEA NOT NULL,
    content_type   TEXT,
    trace          TEXT,
    key_id         TEXT,
    state          TEXT NOT NULL,           -- queued, leased, succeeded, dead
    attempts       BIGINT NOT NULL DEFAULT 0,
    max_attempts   BIGINT NOT NULL,
    enqueued_ms    BIGINT NOT NULL,
    expires_ms     BIGINT NOT NULL,         -- past it, no more attempts (max_age)
    not_before_ms  BIGINT NOT NULL,         -- the next attempt, not before this
    lease_until_ms BIGINT,
    last_error     TEXT,
    result         BYTEA,
    version        BIGINT,                  -- the version that last ran it
    finished_ms    BIGINT,
    leased_by      TEXT                     -- the node holding the lease
);
CREATE INDEX events_ready ON events (state, not_before_ms);
CREATE INDEX events_function ON events (function, state);
