-- +goose Up
-- The posting path writes two rows per message (room_events, messages), and
-- at thousands of posts a second their index entries and foreign key checks
-- are most of what Postgres does for a post (issue 18's profile: the
-- append statement took 1.6 ms of a group's 2.1 ms, most of it in the
-- per-row foreign key triggers). What this takes out is never read:
--
-- room_events_client_id: only message events carry a client_id, and
-- messages_client_id enforces the same key (room, author, client_id), in
-- the same transaction.
DROP INDEX room_events_client_id;
-- room_events_messages: nothing reads room_events by type since history
-- reads the messages table (00004).
DROP INDEX room_events_messages;
-- The foreign keys of the two appended rows. Rooms, users and messages
-- are never deleted (a deletion sets deleted_at and keeps the row), and a
-- post's transaction holds its room's row lock and has read its author's
-- membership (room_members keeps its own foreign keys) and the message it
-- replies to, so each checked reference is already known to exist.
ALTER TABLE room_events DROP CONSTRAINT room_events_room_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_author_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_reply_to_fkey;

-- +goose Down
ALTER TABLE messages ADD CONSTRAINT messages_reply_to_fkey FOREIGN KEY (reply_to) REFERENCES messages (id);
ALTER TABLE messages ADD CONSTRAINT messages_author_id_fkey FOREIGN KEY (author_id) REFERENCES users (id);
ALTER TABLE messages ADD CONSTRAINT messages_room_id_fkey FOREIGN KEY (room_id) REFERENCES rooms (id);
ALTER TABLE room_events ADD CONSTRAINT room_events_room_id_fkey FOREIGN KEY (room_id) REFERENCES rooms (id);
CREATE INDEX room_events_messages ON room_events (room_id, seq) WHERE type = 'message';
CREATE UNIQUE INDEX room_events_client_id ON room_events (room_id, subject_id, client_id)
    WHERE client_id IS NOT NULL;
