-- +goose Up
-- Conversations: messages change after they are posted (edits, deletes,
-- reactions, replies) and members keep a read marker.
--
-- The room event log stays the truth that streams replay. Beside it,
-- messages holds each message's current state (what history and single
-- reads show) and reactions who reacted with what. Message text lives in
-- plain text columns only (room_events.data, messages.body), so erasing a
-- deleted message's text can be checked.

-- message_count is the room's message ordinal: the number of messages ever
-- posted (deleted ones included), bumped in the statement that takes the
-- message's seq. Unread counts are arithmetic on it.
ALTER TABLE rooms ADD COLUMN message_count bigint NOT NULL DEFAULT 0;

-- message_id ties the events about a message (the message itself, its
-- edits, its deletion, reactions to it) to it, so a deletion finds every
-- event that carries its text.
ALTER TABLE room_events ADD COLUMN message_id uuid;
CREATE INDEX room_events_message ON room_events (message_id) WHERE message_id IS NOT NULL;

CREATE TABLE messages (
    id         uuid PRIMARY KEY,
    room_id    uuid NOT NULL REFERENCES rooms (id),
    seq        bigint NOT NULL,
    -- ordinal is the message's place among the room's messages (1, 2, ...).
    ordinal    bigint NOT NULL,
    author_id  uuid NOT NULL REFERENCES users (id),
    -- body is the current text: the last edit, or '' once deleted.
    body       text NOT NULL,
    -- body_hash is SHA-256 of the body first posted, so a repeated
    -- client_id can be compared after the text was edited or erased.
    body_hash  bytea NOT NULL,
    client_id  text,
    reply_to   uuid REFERENCES messages (id),
    created_at timestamptz NOT NULL,
    edited_at  timestamptz,
    deleted_at timestamptz,
    UNIQUE (room_id, seq)
);
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, author_id, client_id)
    WHERE client_id IS NOT NULL;
-- Deleted messages after a read marker correct the unread arithmetic.
CREATE INDEX messages_deleted ON messages (room_id, seq) WHERE deleted_at IS NOT NULL;

CREATE TABLE reactions (
    message_id uuid NOT NULL REFERENCES messages (id),
    key        text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, key, user_id)
);

-- A member's read marker: the seq they have read up to, and the room's
-- message ordinal at that seq (the messages with seq <= last_read_seq).
ALTER TABLE room_members
    ADD COLUMN last_read_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_read_ordinal bigint NOT NULL DEFAULT 0;

-- Messages posted before this migration: their current state is the
-- message event as posted.
INSERT INTO messages (id, room_id, seq, ordinal, author_id, body, body_hash, client_id, created_at)
SELECT (d->>'id')::uuid, e.room_id, e.seq,
       row_number() OVER (PARTITION BY e.room_id ORDER BY e.seq),
       (d->'author'->>'id')::uuid, d->>'body', sha256(convert_to(d->>'body', 'UTF8')),
       e.client_id, (d->>'created_at')::timestamptz
FROM room_events e, LATERAL (SELECT e.data::jsonb AS d) j
WHERE e.type = 'message';
UPDATE room_events SET message_id = (data::jsonb->>'id')::uuid WHERE type = 'message';
UPDATE rooms r SET message_count = (SELECT count(*) FROM messages m WHERE m.room_id = r.id);
-- Existing members have read everything so far: no unread flood.
UPDATE room_members m SET last_read_seq = r.last_seq, last_read_ordinal = r.message_count
FROM rooms r WHERE r.id = m.room_id;

-- +goose Down
ALTER TABLE room_members DROP COLUMN last_read_ordinal, DROP COLUMN last_read_seq;
DROP TABLE reactions;
DROP TABLE messages;
DROP INDEX room_events_message;
ALTER TABLE room_events DROP COLUMN message_id;
ALTER TABLE rooms DROP COLUMN message_count;
