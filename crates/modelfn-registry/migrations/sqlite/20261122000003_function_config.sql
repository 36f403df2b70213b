-- Scaling settings changed at run time (`modelfn config`), per function, across versions.
CREATE TABLE function_config (
    function        TEXT PRIMARY KEY NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    scaling         TEXT NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
