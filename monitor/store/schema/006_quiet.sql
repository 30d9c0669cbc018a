-- review.escalated: how many escalation levels a review in its current overdue spell raised.
-- One-off quiet windows set from the CLI (`spmon quiet add SINK --until ...`): a running
-- service reads them on every dispatcher pass, so an operator needs neither a restart nor
-- the service's lock (SQLite's own locking serialises the one insert or delete).
CREATE TABLE quiet_window (
    id          INTEGER PRIMARY KEY,
    sink        TEXT NOT NULL,
    start_at    REAL NOT NULL,
    end_at      REAL NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
);
CREATE INDEX quiet_window_sink ON quiet_window (sink, end_at);
ALTER TABLE session ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
