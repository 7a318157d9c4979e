-- +goose Up
-- The write limit: one token bucket per user, refilled arithmetically by
-- each charge (see internal/postgres/ratelimit.go), so it holds across
-- replicas. One row per user who ever wrote.
CREATE TABLE write_buckets (
    user_id    uuid PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Failed-login counters, one per key (a username, or a client IP and a
-- username). A window starts at a key's first failure and ends at
-- expires_at; rows past their window are pruned as others are written, so
-- the table holds about one window's worth of keys.
CREATE TABLE login_failures (
    key        text PRIMARY KEY,
    failures   integer NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX login_failures_expiry ON login_failures (expires_at);

-- reserve_login counts one failed login against every key at once, before
-- the password is checked, unless a key with a limit (> 0) is already at
-- it: then it counts nothing and returns the seconds until the first such
-- window ends (0 when reserved). Keys are locked in order, so concurrent
-- reservations cannot deadlock, and cannot all slip under a limit.
-- +goose StatementBegin
CREATE FUNCTION reserve_login(keys text[], limits integer[], win interval) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    t    timestamptz := clock_timestamp();
    wait double precision;
BEGIN
    INSERT INTO login_failures AS f (key, failures, expires_at)
        SELECT k, 0, t + win FROM unnest(keys) AS k ORDER BY k
        ON CONFLICT (key) DO UPDATE SET failures = 0, expires_at = t + win WHERE f.expires_at <= t;
    SELECT max(extract(epoch FROM f.expires_at - t)) INTO wait
        FROM login_failures f JOIN unnest(keys, limits) AS l (k, lim) ON f.key = l.k
        WHERE l.lim > 0 AND f.failures >= l.lim;
    IF wait IS NULL THEN
        UPDATE login_failures SET failures = failures + 1 WHERE key = ANY (keys);
        wait := 0;
    END IF;
    -- Prune a few windows that have passed; SKIP LOCKED never waits, so
    -- this cannot deadlock with another reservation.
    DELETE FROM login_failures WHERE key IN (
        SELECT key FROM login_failures WHERE expires_at <= t
        ORDER BY expires_at LIMIT 16 FOR UPDATE SKIP LOCKED);
    RETURN greatest(wait, 0);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION reserve_login(text[], integer[], interval);
DROP TABLE login_failures;
DROP TABLE write_buckets;
