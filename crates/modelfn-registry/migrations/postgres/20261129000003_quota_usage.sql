-- Quota counters shared by every node: one row per plan, key and period (`2026-11-22` or
-- `2026-11`), raised by one conditional upsert per batch of requests, so the quota is exact over
-- the cluster (the row lock orders nodes counting at once).
CREATE TABLE quota_usage (
    plan    TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    period  TEXT NOT NULL,
    used    BIGINT NOT NULL,
    prev    BIGINT NOT NULL DEFAULT 0,  -- the count before the last upsert (its grant: used - prev)
    PRIMARY KEY (plan, key_id, period)
);
