-- Named leases: one node at a time holds each (a stream mapping), renewing it before
-- until_ms; a lapsed lease goes to the next node that asks.
CREATE TABLE leases (
    name      TEXT PRIMARY KEY NOT NULL,
    holder    TEXT NOT NULL,
    until_ms  BIGINT NOT NULL
);
