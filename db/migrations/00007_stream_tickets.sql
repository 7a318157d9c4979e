-- +goose Up
-- Single-use stream tickets (POST /v1/stream-tickets), kept hashed so any
-- replica accepts them. token_exp is when the access token that asked for
-- the ticket expires: a stream opened with it ends then.
CREATE TABLE stream_tickets (
    hash       bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id),
    token_exp  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX stream_tickets_expires_at ON stream_tickets (expires_at);

-- +goose Down
DROP TABLE stream_tickets;
