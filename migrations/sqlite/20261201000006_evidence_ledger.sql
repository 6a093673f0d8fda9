-- The evidence ledger: every KR snapshot says what made it (a sync run or a check-in,
-- and the rule set in force) and which items entered or left the KR's scope or changed
-- since the previous snapshot. Deltas only: the scope at any snapshot is the replay of
-- its KR's deltas up to it.
ALTER TABLE kr_snapshots ADD COLUMN start_value REAL;
ALTER TABLE kr_snapshots ADD COLUMN run_id BIGINT;
ALTER TABLE kr_snapshots ADD COLUMN checkin_id BIGINT;
ALTER TABLE kr_snapshots ADD COLUMN rules_hash TEXT;

-- Each KR's scope as of its latest snapshot: what the next snapshot's deltas are taken
-- against. weight: what the item weighs in the KR (1, its estimate, or the value a sum
-- adds); counted: whether it adds to current (done, or done inside the period).
CREATE TABLE kr_scope (
    kr_id    TEXT NOT NULL,
    source   TEXT NOT NULL,
    ext_id   TEXT NOT NULL,
    item_key TEXT NOT NULL,
    category TEXT NOT NULL,
    weight   REAL NOT NULL,
    counted  INTEGER NOT NULL,
    rule_id  TEXT NOT NULL,
    PRIMARY KEY (kr_id, source, ext_id)
);

-- change: entered | left | changed. For left, the item as it was; for entered and
-- changed, as it is now, with the previous category and weight of a change.
CREATE TABLE kr_evidence (
    snapshot_id   BIGINT NOT NULL,
    kr_id         TEXT NOT NULL,
    source        TEXT NOT NULL,
    ext_id        TEXT NOT NULL,
    item_key      TEXT NOT NULL,
    change        TEXT NOT NULL,
    category      TEXT NOT NULL,
    weight        REAL NOT NULL,
    counted       INTEGER NOT NULL,
    rule_id       TEXT NOT NULL,
    prev_category TEXT,
    prev_counted  INTEGER,
    prev_weight   REAL
);
CREATE INDEX kr_evidence_kr ON kr_evidence (kr_id, snapshot_id);
