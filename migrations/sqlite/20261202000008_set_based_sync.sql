-- Set-based sync (issue 12): what the reports read per item is kept up to date by the
-- sync step, in the same transaction, instead of being recomputed on every read.

-- How many KRs an item moves by its own rules (its rows in matches).
ALTER TABLE items ADD COLUMN match_count INTEGER NOT NULL DEFAULT 0;
UPDATE items SET match_count = (SELECT COUNT(*) FROM matches m
    WHERE m.source = items.source AND m.ext_id = items.ext_id);

-- Per epic or parent (by its key within its source, whether it is stored yet or not):
-- its children, those that move a KR, and those an exempt rule matches. A child names
-- it as its epic or parent (once, when it names it as both); abandoned children and
-- self-references are left out. SPEC.md, "Unaligned work": an epic whose children move a
-- KR is aligned through them, one whose children are all exempt is exempt.
CREATE TABLE child_counts (
    source   TEXT NOT NULL,
    up       TEXT NOT NULL,
    children INTEGER NOT NULL,
    moving   INTEGER NOT NULL,
    exempt   INTEGER NOT NULL,
    PRIMARY KEY (source, up)
) WITHOUT ROWID;
INSERT INTO child_counts (source, up, children, moving, exempt)
SELECT source, up, COUNT(*),
       SUM(CASE WHEN match_count > 0 THEN 1 ELSE 0 END),
       SUM(CASE WHEN exempt_rule IS NULL THEN 0 ELSE 1 END)
FROM (
    SELECT c.source, c.epic AS up, c.match_count, c.exempt_rule FROM items c
     WHERE c.epic IS NOT NULL AND c.epic <> '' AND c.epic <> c.key AND c.abandoned = 0
    UNION ALL
    SELECT c.source, c.parent AS up, c.match_count, c.exempt_rule FROM items c
     WHERE c.parent IS NOT NULL AND c.parent <> '' AND c.parent <> c.key AND c.abandoned = 0
       AND (c.epic IS NULL OR c.epic <> c.parent)
) links
GROUP BY source, up;

-- Per epic or parent: the KRs its children move, and through how many children each
-- (what `moves` and `allocation` count an epic as moving).
CREATE TABLE child_krs (
    source TEXT NOT NULL,
    up     TEXT NOT NULL,
    kr_id  TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (source, up, kr_id)
) WITHOUT ROWID;
INSERT INTO child_krs (source, up, kr_id, n)
SELECT links.source, links.up, m.kr_id, COUNT(*)
FROM (
    SELECT c.source, c.epic AS up, c.ext_id FROM items c
     WHERE c.epic IS NOT NULL AND c.epic <> '' AND c.epic <> c.key AND c.abandoned = 0
    UNION ALL
    SELECT c.source, c.parent AS up, c.ext_id FROM items c
     WHERE c.parent IS NOT NULL AND c.parent <> '' AND c.parent <> c.key AND c.abandoned = 0
       AND (c.epic IS NULL OR c.epic <> c.parent)
) links
JOIN matches m ON m.source = links.source AND m.ext_id = links.ext_id
GROUP BY links.source, links.up, m.kr_id;

-- An item is looked up by its key within its source (items_source_key, migration 0007):
-- the index on the key alone only cost every insert.
DROP INDEX items_key;

-- Small rows read and written by their key: stored in key order (WITHOUT ROWID), one
-- B-tree each instead of a table and its primary-key index. A KR's scope is summed by a
-- scan of its key range, and a page of items writes half as many B-trees.
CREATE TABLE kr_scope_new (
    kr_id    TEXT NOT NULL,
    source   TEXT NOT NULL,
    ext_id   TEXT NOT NULL,
    item_key TEXT NOT NULL,
    category TEXT NOT NULL,
    weight   REAL NOT NULL,
    counted  INTEGER NOT NULL,
    rule_id  TEXT NOT NULL,
    PRIMARY KEY (kr_id, source, ext_id)
) WITHOUT ROWID;
INSERT INTO kr_scope_new SELECT kr_id, source, ext_id, item_key, category, weight, counted, rule_id
FROM kr_scope;
DROP TABLE kr_scope;
ALTER TABLE kr_scope_new RENAME TO kr_scope;

CREATE TABLE matches_new (
    source  TEXT NOT NULL,
    ext_id  TEXT NOT NULL,
    kr_id   TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    PRIMARY KEY (source, ext_id, kr_id)
) WITHOUT ROWID;
INSERT INTO matches_new SELECT source, ext_id, kr_id, rule_id FROM matches;
DROP TABLE matches;
ALTER TABLE matches_new RENAME TO matches;
CREATE INDEX matches_kr ON matches (kr_id);
