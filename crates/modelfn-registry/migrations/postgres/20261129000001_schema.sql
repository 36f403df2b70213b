-- The metadata schema on PostgreSQL: the same tables, columns and meaning as the SQLite
-- migrations up to 20261128000006 (see migrations/sqlite for why each exists), written
-- as one step because no PostgreSQL database predates it. Integers are BIGINT (Rust's
-- i64, as SQLite's INTEGER), JSON columns are TEXT read by the store, bodies are BYTEA.

CREATE TABLE functions (
    name            TEXT PRIMARY KEY NOT NULL,
    latest_version  BIGINT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);

CREATE TABLE function_versions (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    runtime         TEXT NOT NULL,
    manifest        TEXT NOT NULL,
    code_sha256     TEXT NOT NULL,
    code_size       BIGINT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    layers          TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (function, version)
);

CREATE TABLE layer_versions (
    name            TEXT NOT NULL,
    version         BIGINT NOT NULL,
    code_sha256     TEXT NOT NULL,
    compressed_size BIGINT NOT NULL,
    unpacked_size   BIGINT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    created_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE test_events (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    body            BYTEA NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (function, name)
);

CREATE TABLE function_config (
    function        TEXT PRIMARY KEY NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    scaling         TEXT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);

-- `secret` is sealed by the control plane with the key-encryption key, which is not in
-- the database; `secret_sha256` is the SHA-256 of the key's API key ('' when none).
CREATE TABLE access_keys (
    access_key_id   TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    secret          TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    secret_sha256   TEXT NOT NULL DEFAULT '',
    manage          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX access_keys_by_secret ON access_keys (secret_sha256);

CREATE TABLE function_urls (
    function        TEXT PRIMARY KEY NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    auth            TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    qualifier       TEXT
);

CREATE TABLE apis (
    name            TEXT PRIMARY KEY NOT NULL,
    definition      TEXT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);

CREATE TABLE usage_plans (
    name            TEXT PRIMARY KEY NOT NULL,
    definition      TEXT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);

-- Counters updated with RETURNING (version numbers, the generation): a writer holds the
-- row until it commits, so numbers are distinct across every node.
CREATE TABLE counters (
    scope   TEXT PRIMARY KEY NOT NULL,
    value   BIGINT NOT NULL
);
INSERT INTO counters (scope, value) VALUES ('generation', 0);

CREATE TABLE changes (
    generation  BIGINT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);

CREATE TABLE aliases (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    routing         TEXT NOT NULL,
    sticky          TEXT,
    description     TEXT NOT NULL DEFAULT '',
    updated_at_ms   BIGINT NOT NULL,
    updated_by      TEXT NOT NULL,
    shadow          TEXT,
    PRIMARY KEY (function, name)
);

CREATE TABLE alias_history (
    id              BIGSERIAL PRIMARY KEY,
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    routing         TEXT NOT NULL,
    sticky          TEXT,
    at_ms           BIGINT NOT NULL,
    "by"            TEXT NOT NULL,
    shadow          TEXT
);
CREATE INDEX alias_history_by_function ON alias_history (function, id);

CREATE TABLE models (
    name            TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    size            BIGINT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    created_at_ms   BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    PRIMARY KEY (name, revision)
);

CREATE TABLE model_heads (
    name            TEXT PRIMARY KEY NOT NULL,
    revision        BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    updated_by      TEXT NOT NULL,
    FOREIGN KEY (name, revision) REFERENCES models(name, revision)
);

CREATE TABLE provisioned_concurrency (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier       TEXT NOT NULL,
    count           BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    updated_by      TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
