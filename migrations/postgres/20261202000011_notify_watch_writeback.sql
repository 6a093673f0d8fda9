-- Notifications beyond KRs (issue 17): what the notifiers last saw of each other subject
-- ("source/NAME": ok | failing; "unaligned/NOTIFIER/PROJECT": below | above), so a
-- source that keeps failing or a project that stays over its share is told once.
CREATE TABLE notify_watch (
    subject TEXT PRIMARY KEY,
    state   TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);

-- Write-back (issue 17): the last label edit okrsync made on an item, so the same decision
-- never touches an item twice (action: add | remove).
CREATE TABLE writeback_log (
    source TEXT NOT NULL,
    key    TEXT NOT NULL,
    label  TEXT NOT NULL,
    action TEXT NOT NULL,
    at_ms  BIGINT NOT NULL,
    PRIMARY KEY (source, key, label)
);
