-- Function URLs, and the SHA-256 of each key's secret (to find a key from the
-- x-api-key header it is sent as).
CREATE TABLE function_urls (
    function        TEXT PRIMARY KEY NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    auth            TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL
);

ALTER TABLE access_keys ADD COLUMN secret_sha256 TEXT NOT NULL DEFAULT '';
CREATE INDEX access_keys_by_secret ON access_keys (secret_sha256);
