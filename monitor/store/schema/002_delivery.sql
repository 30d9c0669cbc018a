-- Sinks a receiver disabled (HTTP 410): kept across restarts, keyed by the sink's name and a
-- digest of its configuration, so editing the sink's config re-enables it.
CREATE TABLE sink_state (
    sink        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    disabled_at REAL NOT NULL,
    reason      TEXT NOT NULL
) WITHOUT ROWID;

-- The latest overdue/resolved row of each session per sink: which alerts are still firing
-- (the Alertmanager resend loop) without scanning the whole outbox.
CREATE INDEX outbox_alerts ON outbox (sink, event_type, session_sid, id);

-- Pending rows of a sink in id order, for claim(): it walks them oldest first and stops
-- after `limit` heads, so a claim costs what it returns, not the size of the backlog.
CREATE INDEX outbox_pending_heads ON outbox (sink, id) WHERE state = 'pending';
