-- Functions and their immutable versions. A deploy adds a version and points
-- the function at it in one transaction.
CREATE TABLE functions (
    name            TEXT PRIMARY KEY NOT NULL,
    latest_version  INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

CREATE TABLE function_versions (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version         INTEGER NOT NULL,
    runtime         TEXT NOT NULL,
    manifest        TEXT NOT NULL,
    code_sha256     TEXT NOT NULL,
    code_size       INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (function, version)
);
