-- Quota counters kept in the store: one row per plan, key and period (`2026-11-22` or
-- `2026-11`), raised by one conditional upsert per batch of requests. The server counts quotas
-- here when the store is a cluster's; this table keeps the two backends' schemas alike.
CREATE TABLE quota_usage (
    plan    TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    period  TEXT NOT NULL,
    used    INTEGER NOT NULL,
    prev    INTEGER NOT NULL DEFAULT 0,  -- the count before the last upsert (its grant: used - prev)
    PRIMARY KEY (plan, key_id, period)
);
