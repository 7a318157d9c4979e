-- +goose Up
-- The user stream (GET /v1/events) resumes across all of a user's rooms from
-- one cursor. See the README ("The user stream cursor") for the design.

-- A small number per room, so a cursor names rooms in a few bytes.
ALTER TABLE rooms ADD COLUMN ordinal bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE rooms ADD CONSTRAINT rooms_ordinal_key UNIQUE (ordinal);

-- hx is the event's visibility horizon mark: the larger of its transaction's
-- id and the room's previous event's hx, so it never decreases along a
-- room's seq. An event whose hx is below pg_snapshot_xmin of a snapshot has
-- committed and is visible in it, and any event committed later has a
-- larger hx: "the room's events with hx below H" is a seq prefix that never
-- changes once H is a past horizon. Events logged before this migration
-- all committed long ago and get the smallest normal xid.
ALTER TABLE rooms ADD COLUMN last_hx xid8 NOT NULL DEFAULT '3';
ALTER TABLE room_events ADD COLUMN hx xid8 NOT NULL DEFAULT '3';
-- New events must state their hx (appendSQL does): no default.
ALTER TABLE room_events ALTER COLUMN hx DROP DEFAULT;
CREATE INDEX room_events_hx ON room_events (room_id, hx, seq);

-- Membership periods, kept after a member leaves (room_members forgets
-- them), so a stream can replay "the events of the rooms the user was in":
-- from the user's member.joined (joined_seq) to their member.left
-- (left_seq; NULL while the period is open).
CREATE TABLE room_member_periods (
    user_id    uuid NOT NULL REFERENCES users (id),
    room_id    uuid NOT NULL REFERENCES rooms (id),
    joined_seq bigint NOT NULL,
    left_seq   bigint,
    PRIMARY KEY (user_id, room_id, joined_seq),
    CHECK (left_seq IS NULL OR left_seq > joined_seq)
);

-- Existing memberships, from the log: each member.joined up to the same
-- user's next member.left in the room, if any.
INSERT INTO room_member_periods (user_id, room_id, joined_seq, left_seq)
SELECT subject_id, room_id, seq, CASE WHEN next_type = 'member.left' THEN next_seq END
FROM (
    SELECT subject_id, room_id, seq, type,
        lead(seq) OVER w AS next_seq, lead(type) OVER w AS next_type
    FROM room_events
    WHERE type IN ('member.joined', 'member.left') AND subject_id IS NOT NULL
    WINDOW w AS (PARTITION BY room_id, subject_id ORDER BY seq)
) m
WHERE type = 'member.joined';

-- +goose Down
DROP TABLE room_member_periods;
DROP INDEX room_events_hx;
ALTER TABLE room_events DROP COLUMN hx;
ALTER TABLE rooms DROP COLUMN last_hx;
ALTER TABLE rooms DROP COLUMN ordinal;
