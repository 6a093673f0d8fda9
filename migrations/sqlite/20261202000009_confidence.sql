-- Judgement beside the numbers (issue 16): a check-in may carry the owner's confidence
-- (0–10) and a note, with or without a value; a value is only ever a manual KR's.
-- SQLite cannot drop a NOT NULL in place: the table is rebuilt with the same ids.
CREATE TABLE checkins_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kr_id      TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    value      REAL,
    note       TEXT,
    author     TEXT,
    confidence REAL
);
INSERT INTO checkins_new (id, kr_id, at_ms, value, note, author)
SELECT id, kr_id, at_ms, value, note, author FROM checkins;
DROP TABLE checkins;
ALTER TABLE checkins_new RENAME TO checkins;
CREATE INDEX checkins_kr ON checkins (kr_id, at_ms);
