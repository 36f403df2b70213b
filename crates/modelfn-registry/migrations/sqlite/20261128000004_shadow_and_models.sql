-- Shadow traffic on aliases (a challenger version and the share of calls mirrored to it,
-- as JSON); function URLs bound to a version or an alias; and the model store: named
-- models, revisions by digest, and which revision is current.
ALTER TABLE aliases ADD COLUMN shadow TEXT;
ALTER TABLE alias_history ADD COLUMN shadow TEXT;
ALTER TABLE function_urls ADD COLUMN qualifier TEXT;

CREATE TABLE models (
    name            TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    created_at_ms   INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    PRIMARY KEY (name, revision)
);

CREATE TABLE model_heads (
    name            TEXT PRIMARY KEY NOT NULL,
    revision        INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    updated_by      TEXT NOT NULL,
    FOREIGN KEY (name, revision) REFERENCES models(name, revision)
);
