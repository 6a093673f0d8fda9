-- Validators (ETags) of conditional requests, per source and request (the URL without
-- credentials), so an unchanged upstream answers 304 on every step: across restarts,
-- `okrsync sync` runs and replicas. Written in the step's transaction, like the cursor.
CREATE TABLE http_validators (
    source TEXT NOT NULL,
    request TEXT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (source, request)
);
