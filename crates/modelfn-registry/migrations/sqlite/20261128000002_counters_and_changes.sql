-- Counters, each one row updated with RETURNING: the version numbers of each function and
-- layer, and the generation of desired state. A write holds its row until it commits, so
-- numbers are distinct however many writers (or nodes) there are; no process-wide lock.
CREATE TABLE counters (
    scope   TEXT PRIMARY KEY NOT NULL,
    value   INTEGER NOT NULL
);
INSERT INTO counters (scope, value) VALUES ('generation', 0);
INSERT INTO counters (scope, value)
    SELECT 'function:' || function, MAX(version) FROM function_versions GROUP BY function;
INSERT INTO counters (scope, value)
    SELECT 'layer:' || name, MAX(version) FROM layer_versions GROUP BY name;

-- The log of changes to desired state, numbered by the generation counter in the same
-- transaction as the change; each node's reconciler reads it from where it left off.
-- The oldest entries are trimmed; a reader that falls behind them reloads everything.
CREATE TABLE changes (
    generation  INTEGER PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
);
