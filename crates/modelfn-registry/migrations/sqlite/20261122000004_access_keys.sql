-- Access keys: the credentials AWS-protocol clients sign requests with (SigV4 needs the
-- secret itself, so it is kept; the database file is private to modelfn, mode 0600).
CREATE TABLE access_keys (
    access_key_id   TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    secret          TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL
);
