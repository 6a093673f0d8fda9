-- Items closed without being done (GitHub "closed as not planned") match no rule.
ALTER TABLE items ADD COLUMN abandoned INTEGER NOT NULL DEFAULT 0;
