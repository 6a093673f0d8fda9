-- Set-based sync (issue 12): what the reports read per item is kept up to date by the
-- sync step, in the same transaction, instead of being recomputed on every read.

-- How many KRs an item moves by its own rules (its rows in matches).
ALTER TABLE items ADD COLUMN match_count BIGINT NOT NULL DEFAULT 0;
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
    children BIGINT NOT NULL,
    moving   BIGINT NOT NULL,
    exempt   BIGINT NOT NULL,
    PRIMARY KEY (source, up)
);
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
    n      BIGINT NOT NULL,
    PRIMARY KEY (source, up, kr_id)
);
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
