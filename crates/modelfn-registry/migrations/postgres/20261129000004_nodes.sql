-- Node membership: each node's last record of itself (modelfn cluster status).
CREATE TABLE nodes (
    name          TEXT PRIMARY KEY NOT NULL,
    address       TEXT NOT NULL,
    version       TEXT NOT NULL,
    started_ms    BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    generation    BIGINT NOT NULL,
    in_flight     BIGINT NOT NULL
);
