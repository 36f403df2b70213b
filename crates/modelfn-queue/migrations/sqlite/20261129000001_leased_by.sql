-- Which node holds a lease: a node restarting gives back only its own (on a shared
-- PostgreSQL queue, other nodes' leases may be running). On SQLite it is always 'local'.
ALTER TABLE events ADD COLUMN leased_by TEXT;
