-- +goose Up
-- Posts commit without pg_notify: each replica announces its commits in
-- batches afterwards (internal/postgres/announce.go). Listeners look for
-- events whose announcement never came (the posting replica died after the
-- commit) by horizon window, across all rooms in one index range scan
-- (internal/postgres/sweep.go): hx in [lo, hi), newest seq per room.
CREATE INDEX room_events_horizon ON room_events (hx) INCLUDE (room_id, seq);

-- +goose Down
DROP INDEX room_events_horizon;
