-- Asynchronous invocations: accepted (202) once a row is here.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,       -- the request id
    function      TEXT NOT NULL,
    qualifier     TEXT NOT NULL,          -- $LATEST, a version or an alias
    payload       BLOB NOT NULL,
    content_type  TEXT,
    trace         TEXT,
    key_id        TEXT,
    state         TEXT NOT NULL,          -- queued, leased, succeeded, dead
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    enqueued_ms   INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,       -- past it, no more attempts (max_age)
    not_before_ms INTEGER NOT NULL,       -- the next attempt, not before this
    lease_until_ms INTEGER,
    last_error    TEXT,
    result        BLOB,
    version       INTEGER,                -- the version that last ran it
    finished_ms   INTEGER
);
CREATE INDEX events_ready ON events (state, not_before_ms);
CREATE INDEX events_function ON events (function, state);
