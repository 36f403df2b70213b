-- Quota counters kept in the store: one row per plan, key and period (`2026-11-22` or
-- `2026-11`), raised by one conditional upsert per request. The server counts quotas
-- here when the store is a cluster's; this table keeps the two backends' schemas alike.
CREATE TABLE quota_usage (
    plan    TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    period  TEXT NOT NULL,
    used    INTEGER NOT NULL,
    PRIMARY KEY (plan, key_id, period)
);
