-- +goose Up
-- Presence (v1.1). Each replica keeps a heartbeat row, and a session row
-- for every user with a stream open on it (from their first stream there
-- until the grace after their last one). A user is online while any
-- session row of theirs exists; the replica that adds a user's first row
-- announces them online, the one that deletes the last announces them
-- offline, and a survivor that claims a dead replica's row (its heartbeat
-- went stale) deletes its sessions and announces those departures, once.
-- Both tables are UNLOGGED: presence is not worth WAL, and a database crash,
-- which empties them, is followed by every replica registering again.
CREATE UNLOGGED TABLE presence_replicas (
    id           uuid PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);
CREATE UNLOGGED TABLE presence_sessions (
    user_id    uuid NOT NULL,
    replica_id uuid NOT NULL REFERENCES presence_replicas (id),
    PRIMARY KEY (user_id, replica_id)
);
CREATE INDEX presence_sessions_replica ON presence_sessions (replica_id);

-- +goose Down
DROP TABLE presence_sessions;
DROP TABLE presence_replicas;
