-- History: one row per event the poller observed for a session, written in the transaction
-- that commits the snapshot causing it, whether or not any sink takes the event. Deliveries
-- stay in the outbox (one row per event and sink), so a session's history is its transitions
-- and the outbox rows with their event ids. history.retention purges by observed_at.
-- (No semicolon in these comments: the migration runner splits statements on it.)
CREATE TABLE transition (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    session_sid TEXT NOT NULL,
    type        TEXT NOT NULL,
    observed_at REAL NOT NULL,
    field       TEXT,
    previous    TEXT,
    current     TEXT,
    message     TEXT
);
CREATE INDEX transition_session ON transition (session_sid, id);
CREATE INDEX transition_observed ON transition (observed_at);
-- A session's deliveries, for its history, without a scan of the whole outbox.
CREATE INDEX outbox_session ON outbox (session_sid, id);
