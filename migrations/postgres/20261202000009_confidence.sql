-- Judgement beside the numbers (issue 16): a check-in may carry the owner's confidence
-- (0–10) and a note, with or without a value; a value is only ever a manual KR's.
ALTER TABLE checkins ALTER COLUMN value DROP NOT NULL;
ALTER TABLE checkins ADD COLUMN confidence DOUBLE PRECISION;
