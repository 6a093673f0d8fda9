-- okrsync initial schema (SQLite). Times are epoch milliseconds (UTC).
CREATE TABLE sources (
    name            TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    cursor_ms       INTEGER,
    last_full_ms    INTEGER,
    last_success_ms INTEGER,
    last_attempt_ms INTEGER,
    last_outcome    TEXT,
    last_error      TEXT
);

CREATE TABLE items (
    source      TEXT NOT NULL,
    ext_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    url         TEXT NOT NULL,
    project     TEXT NOT NULL,
    item_type   TEXT NOT NULL,
    status      TEXT NOT NULL,
    category    TEXT NOT NULL,
    labels      TEXT NOT NULL,
    components  TEXT NOT NULL,
    epic        TEXT,
    parent      TEXT,
    milestone   TEXT,
    assignee    TEXT,
    estimate    REAL,
    created_ms  INTEGER,
    updated_ms  INTEGER NOT NULL,
    resolved_ms INTEGER,
    fields      TEXT NOT NULL,
    exempt_rule TEXT,
    synced_ms   INTEGER NOT NULL,
    PRIMARY KEY (source, ext_id)
);
CREATE INDEX items_key ON items (key);
CREATE INDEX items_project ON items (project);
CREATE INDEX items_epic ON items (epic);

CREATE TABLE matches (
    source  TEXT NOT NULL,
    ext_id  TEXT NOT NULL,
    kr_id   TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    PRIMARY KEY (source, ext_id, kr_id)
);
CREATE INDEX matches_kr ON matches (kr_id);

CREATE TABLE objectives (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    parent       TEXT,
    owner        TEXT,
    period_label TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL,
    position     INTEGER NOT NULL
);

CREATE TABLE key_results (
    id           TEXT PRIMARY KEY,
    objective_id TEXT NOT NULL,
    title        TEXT NOT NULL,
    measure      TEXT NOT NULL,
    position     INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    current      REAL,
    start_value  REAL NOT NULL DEFAULT 0,
    target       REAL,
    progress     REAL NOT NULL DEFAULT 0,
    item_count   INTEGER NOT NULL DEFAULT 0,
    computed_ms  INTEGER,
    changed_ms   INTEGER
);

CREATE TABLE kr_snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kr_id      TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    current    REAL,
    target     REAL,
    progress   REAL NOT NULL,
    item_count INTEGER NOT NULL,
    cause      TEXT NOT NULL
);
CREATE INDEX kr_snapshots_kr ON kr_snapshots (kr_id, at_ms);

CREATE TABLE checkins (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    kr_id  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL,
    value  REAL NOT NULL,
    note   TEXT,
    author TEXT
);
CREATE INDEX checkins_kr ON checkins (kr_id, at_ms);

CREATE TABLE metric_observations (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    source    TEXT NOT NULL,
    reference TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    value     REAL,
    error     TEXT
);
CREATE INDEX metric_observations_ref ON metric_observations (source, reference, at_ms);

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    outcome     TEXT NOT NULL,
    fetched     INTEGER NOT NULL DEFAULT 0,
    changed     INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,
    krs_changed INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX sync_runs_source ON sync_runs (source, started_ms);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
