-- Aliases: a name for one or more versions of a function, with weights (and optionally a
-- sticky routing key), and the history of every move.
CREATE TABLE aliases (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    routing         TEXT NOT NULL,
    sticky          TEXT,
    description     TEXT NOT NULL DEFAULT '',
    updated_at_ms   INTEGER NOT NULL,
    updated_by      TEXT NOT NULL,
    PRIMARY KEY (function, name)
);

CREATE TABLE alias_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    routing         TEXT NOT NULL,
    sticky          TEXT,
    at_ms           INTEGER NOT NULL,
    by              TEXT NOT NULL
);
CREATE INDEX alias_history_by_function ON alias_history (function, id);
