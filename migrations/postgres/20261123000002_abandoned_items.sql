-- Items closed without being done (GitHub "closed as not planned") match no rule.
ALTER TABLE items ADD COLUMN abandoned BIGINT NOT NULL DEFAULT 0;
