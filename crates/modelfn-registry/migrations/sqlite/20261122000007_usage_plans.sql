-- Usage plans: rate, burst and quota for keys on API stages and function URLs (JSON).
CREATE TABLE usage_plans (
    name            TEXT PRIMARY KEY NOT NULL,
    definition      TEXT NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
