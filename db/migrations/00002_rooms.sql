-- +goose Up
-- Rooms are soft-deleted so their event log (and its room.deleted) survives
-- for replicas catching up after a listener outage.
CREATE TABLE rooms (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    topic        text NOT NULL DEFAULT '',
    visibility   text NOT NULL CHECK (visibility IN ('public', 'private')),
    owner_id     uuid NOT NULL REFERENCES users (id),
    member_count integer NOT NULL DEFAULT 0,
    last_seq     bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX rooms_public_newest ON rooms (created_at DESC, id DESC)
    WHERE visibility = 'public' AND deleted_at IS NULL;

CREATE TABLE room_members (
    room_id   uuid NOT NULL REFERENCES rooms (id),
    user_id   uuid NOT NULL REFERENCES users (id),
    role      text NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

-- The room event log: every durable event of a room with its gap-free seq.
-- data is the event's JSON exactly as streams send it; messages are events of
-- type 'message' and history reads them from here.
CREATE TABLE room_events (
    room_id    uuid NOT NULL REFERENCES rooms (id),
    seq        bigint NOT NULL,
    type       text NOT NULL,
    data       text NOT NULL,
    subject_id uuid,
    client_id  text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX room_events_client_id ON room_events (room_id, subject_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX room_events_messages ON room_events (room_id, seq)
    WHERE type = 'message';

-- +goose Down
DROP TABLE room_events;
DROP TABLE room_members;
DROP TABLE rooms;
