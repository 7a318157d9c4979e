\set r random(1, 100)
SELECT room_id AS rid, user_id AS uid FROM bench_map WHERE i = :r \gset
\startpipeline
WITH charged AS (
	INSERT INTO write_buckets AS b (user_id, tokens, updated_at) SELECT :uid::uuid, 2000::float8 - 1, clock_timestamp()
	ON CONFLICT (user_id) DO UPDATE SET
		tokens = greatest(-2000::float8, least(2000::float8, b.tokens + 1000::float8 * greatest(0, extract(epoch FROM clock_timestamp() - b.updated_at))) - 1),
		updated_at = greatest(b.updated_at, clock_timestamp())
	RETURNING tokens)
SELECT tokens, set_config('parley.write_grant', CASE WHEN tokens >= 0 THEN 'g' ELSE '' END, false) FROM charged;
BEGIN;
SELECT r.id, r.name, r.topic, r.visibility, r.owner_id, r.member_count, r.last_seq, r.created_at FROM rooms r
	WHERE r.id = :rid::uuid AND r.deleted_at IS NULL AND current_setting('parley.write_grant', true) = 'g' FOR NO KEY UPDATE;
SELECT COALESCE((SELECT role FROM room_members WHERE room_id = :rid::uuid AND user_id = u.id), ''), u.id, u.username, u.display_name FROM users u WHERE u.id = :uid::uuid;
WITH r AS (
	UPDATE rooms SET last_seq = last_seq + 1, message_count = message_count + 1,
		last_hx = greatest(last_hx, pg_current_xact_id())
	WHERE id = :rid::uuid RETURNING last_seq, message_count, last_hx
), i AS (SELECT gen_random_uuid() AS id, clock_timestamp() AS at
), e AS (
	INSERT INTO room_events (room_id, seq, type, data, subject_id, client_id, created_at, message_id, hx)
	SELECT :rid::uuid, r.last_seq, 'message', '{"id":"00000000-0000-0000-0000-000000000000","room_id":"' || :rid::text || '","seq":' || r.last_seq || ',"author":{"id":"' || :uid::text || '","username":"pgbench","display_name":"pgbench"},"body":"t=1764590000000000000 k=123456","created_at":"2026-12-01T13:00:00Z","reactions":[]}',
		:uid::uuid, NULL, i.at, i.id, r.last_hx FROM r, i
), m AS (
	INSERT INTO messages (id, room_id, seq, ordinal, author_id, body, body_hash, client_id, reply_to, created_at)
	SELECT i.id, :rid::uuid, r.last_seq, r.message_count, :uid::uuid, 't=1764590000000000000 k=123456', sha256('t=1764590000000000000 k=123456'), NULL, NULL, i.at FROM r, i
), rd AS (
	UPDATE room_members SET last_read_seq = r.last_seq, last_read_ordinal = r.message_count FROM r
	WHERE room_id = :rid::uuid AND user_id = :uid::uuid
)
SELECT r.last_seq FROM r;
COMMIT;
\endpipeline
