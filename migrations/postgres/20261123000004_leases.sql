-- Several replicas on one database: each source is synced by the replica holding its lease.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    -- When a step of this source last started (wall clock), whoever ran it: the next one
    -- is due one interval later, on whichever replica holds the lease then.
    last_run_ms BIGINT
);

-- Which replica ran a sync step.
ALTER TABLE sync_runs ADD COLUMN replica TEXT;
