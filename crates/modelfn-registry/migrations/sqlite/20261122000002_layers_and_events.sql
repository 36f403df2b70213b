-- Layers: shared dependency bundles, versioned like functions, content-addressed.
CREATE TABLE layer_versions (
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    code_sha256     TEXT NOT NULL,
    compressed_size INTEGER NOT NULL,
    unpacked_size   INTEGER NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

-- The layer versions a function version was deployed with (JSON array).
ALTER TABLE function_versions ADD COLUMN layers TEXT NOT NULL DEFAULT '[]';

-- Saved test events (as in the Lambda console).
CREATE TABLE test_events (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    body            BLOB NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (function, name)
);
