-- Notifications (issue 17): what each KR last looked like to the notifiers, and the
-- messages to send. A change is written to the outbox in the same transaction that
-- records the new state, so each change is queued exactly once.
CREATE TABLE notify_state (
    kr_id   TEXT PRIMARY KEY,
    status  TEXT NOT NULL,
    -- The flag kinds raised, comma-separated, in their order.
    flags   TEXT NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    notifier   TEXT NOT NULL,
    event      TEXT NOT NULL,
    -- The message as JSON (SPEC.md's webhook document).
    payload    TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    -- Not before then (backoff, Retry-After).
    next_ms    INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_ms    INTEGER
);
CREATE INDEX outbox_due ON outbox (next_ms) WHERE sent_ms IS NULL;
