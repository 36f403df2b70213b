-- Quota counters shared by every node: one row per plan, key and period (`2026-11-22` or
-- `2026-11`), raised by one conditional upsert per request, so the quota is exact over
-- the cluster (the row lock orders nodes counting at once).
CREATE TABLE quota_usage (
    plan    TEXT NOT NULL,
    key_id  TEXT NOT NULL,
    period  TEXT NOT NULL,
    used    BIGINT NOT NULL,
    PRIMARY KEY (plan, key_id, period)
);
