-- Node membership: each node's last record of itself (modelfn cluster status).
CREATE TABLE nodes (
    name          TEXT PRIMARY KEY NOT NULL,
    address       TEXT NOT NULL,
    version       TEXT NOT NULL,
    started_ms    INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    generation    INTEGER NOT NULL,
    in_flight     INTEGER NOT NULL
);
