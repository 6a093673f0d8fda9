-- A digest of an item's content: sources without update times (spreadsheet rows) are
-- de-duplicated on it.
ALTER TABLE items ADD COLUMN content_hash TEXT;
