-- Provisioned concurrency set on a version or an alias (as Lambda's
-- PutProvisionedConcurrencyConfig): how many instances stay started for that qualifier.
-- A row goes with its function, its alias or its version.
CREATE TABLE provisioned_concurrency (
    function        TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier       TEXT NOT NULL,
    count           INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    updated_by      TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
);
