-- One row per watched session: the tracked fields of the last *valid* observation, the full
-- payload it came from, the review state machine, and how the last poll went.
CREATE TABLE session (
    session_sid        TEXT PRIMARY KEY,
    install_sid        TEXT NOT NULL,
    exam_sid           TEXT NOT NULL,
    status             TEXT,
    review_required    INTEGER,
    reviewed           INTEGER,
    review_by_date     REAL,
    url                TEXT,
    payload            BLOB,
    digest             BLOB,
    version            INTEGER NOT NULL DEFAULT 0,
    overdue_since      REAL,
    last_overdue_alert REAL,
    due_soon_for       REAL,
    missing            INTEGER NOT NULL DEFAULT 0,
    failures           INTEGER NOT NULL DEFAULT 0,
    last_poll_at       REAL,
    last_outcome       TEXT,
    observed_at        REAL
) WITHOUT ROWID;

-- One row per (event, sink): the transactional outbox.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL,
    sink            TEXT NOT NULL,
    session_sid     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         BLOB NOT NULL,
    created_at      REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    lease_owner     TEXT,
    lease_until     REAL,
    last_error      TEXT,
    delivered_at    REAL,
    UNIQUE (event_id, sink)
);
CREATE INDEX outbox_pending ON outbox (state, sink, session_sid, id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
