-- pgbench fixture for Parley's post transaction (see run.sh): 100 rooms,
-- one poster per room (as cmd/parley-bench posts), on a migrated database.
CREATE TABLE IF NOT EXISTS bench_map (i int PRIMARY KEY, room_id uuid NOT NULL, user_id uuid NOT NULL);
TRUNCATE bench_map;
INSERT INTO users (id, username, display_name, password_hash)
SELECT gen_random_uuid(), 'pgbench' || g, 'pgbench ' || g, 'x' FROM generate_series(1, 100) g
ON CONFLICT DO NOTHING;
INSERT INTO rooms (id, name, visibility, owner_id, member_count)
SELECT gen_random_uuid(), 'pgbench ' || g, 'public', u.id, 1
FROM generate_series(1, 100) g JOIN users u ON u.username = 'pgbench' || g;
INSERT INTO bench_map (i, room_id, user_id)
SELECT g, r.id, r.owner_id FROM generate_series(1, 100) g
JOIN rooms r ON r.name = 'pgbench ' || g AND r.created_at = (SELECT max(created_at) FROM rooms WHERE name = 'pgbench ' || g);
INSERT INTO room_members (room_id, user_id, role) SELECT room_id, user_id, 'owner' FROM bench_map ON CONFLICT DO NOTHING;
