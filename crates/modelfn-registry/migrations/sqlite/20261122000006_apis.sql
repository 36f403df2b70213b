-- APIs (stages and routes), stored as the definition file applied.
CREATE TABLE apis (
    name            TEXT PRIMARY KEY NOT NULL,
    definition      TEXT NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
