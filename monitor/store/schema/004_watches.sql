-- The watch set: one row per time a session was watched. A removal closes the row
-- (removed_at), so `spmon watch ls --all` can say when and where from a session was watched;
-- watching it again opens a new row. At most one open row per session.
CREATE TABLE watches (
    id          INTEGER PRIMARY KEY,
    session_sid TEXT NOT NULL,
    install_sid TEXT NOT NULL,
    exam_sid    TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    interval    REAL,
    source      TEXT NOT NULL,
    added_at    REAL NOT NULL,
    removed_at  REAL
);
CREATE UNIQUE INDEX watches_active ON watches (session_sid) WHERE removed_at IS NULL;
