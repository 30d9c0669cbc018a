-- Shard leases: several `spmon run` on one database share the sessions (issue 12).
--
-- One row per shard (0-255, the `shard` columns' value) and one for the leader (-1: discovery,
-- digests, retention, fleet gauges). A replica owns a row while `expires_at` is after the
-- server's now(); a takeover bumps `epoch`, and every snapshot + outbox transaction checks
-- owner and epoch (FOR SHARE) before it writes, so a replica that lost a shard writes nothing
-- for it. Expiry is always the server's clock, never a replica's.

CREATE TABLE shard_lease (
    shard      smallint PRIMARY KEY CHECK (shard BETWEEN -1 AND 255),
    owner      text,
    epoch      bigint NOT NULL DEFAULT 0,
    expires_at timestamptz
);
INSERT INTO shard_lease (shard) SELECT generate_series(-1, 255);

-- Live replicas (a heartbeat with each renewal): how many share the shards, and so each one's
-- fair share. A replica not seen for a TTL no longer counts; a stopping one deletes its row.
CREATE TABLE replica (
    owner      text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- Watches are loaded by shard when a replica gains one.
ALTER TABLE watches ADD COLUMN shard smallint NOT NULL
    GENERATED ALWAYS AS ((('x' || substr(md5(session_sid), 1, 4))::bit(16)::int % 256)) STORED;
CREATE INDEX watches_shard ON watches (shard) WHERE removed_at IS NULL;
