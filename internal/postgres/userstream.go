package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

var _ chat.UserStreamLog = (*DB)(nil)

// streamBaseSQL reads, in one snapshot, its horizon (pg_snapshot_xmin, or
// the cap $5 when that is lower) and
// each room the user may be owed events in: rooms with an open period, with
// a position given ($3/$4, by ordinal), or with a period whose member.left
// is not below the old horizon $2. A room's base under a horizon is its
// last seq whose hx is below it, one probe of room_events_hx each.
const streamBaseSQL = `WITH h AS (
		SELECT CASE WHEN $5::text IS NULL THEN pg_snapshot_xmin(pg_current_snapshot())
			ELSE LEAST(pg_snapshot_xmin(pg_current_snapshot()), $5::text::xid8) END AS x
	), old AS (
		SELECT COALESCE($2::text::xid8, h.x) AS x FROM h
	), t AS (
		SELECT * FROM unnest($3::bigint[], $4::bigint[]) AS t(ordinal, seq)
	), rs AS (
		SELECT DISTINCT p.room_id FROM room_member_periods p, old
		WHERE p.user_id = $1 AND (p.left_seq IS NULL
			OR p.room_id IN (SELECT r.id FROM rooms r JOIN t ON t.ordinal = r.ordinal)
			OR (SELECT e.hx FROM room_events e WHERE e.room_id = p.room_id AND e.seq = p.left_seq) >= old.x)
	), b AS (
		SELECT r.id, r.ordinal, r.last_seq, COALESCE(t.seq, -1) AS tracked,
			COALESCE((SELECT e.seq FROM room_events e WHERE e.room_id = r.id AND e.hx < old.x
				ORDER BY e.hx DESC, e.seq DESC LIMIT 1), 0) AS old_base,
			COALESCE((SELECT e.seq FROM room_events e WHERE e.room_id = r.id AND e.hx < h.x
				ORDER BY e.hx DESC, e.seq DESC LIMIT 1), 0) AS base
		FROM h, old, rs JOIN rooms r ON r.id = rs.room_id LEFT JOIN t ON t.ordinal = r.ordinal
	)
	SELECT h.x::text, b.id::text, b.ordinal, b.last_seq, b.tracked, b.old_base, b.base, p.joined_seq, COALESCE(p.left_seq, 0)
	FROM h, b JOIN room_member_periods p ON p.user_id = $1 AND p.room_id = b.id
	WHERE p.left_seq IS NULL OR p.left_seq > CASE WHEN b.tracked >= 0 THEN LEAST(b.tracked, b.old_base) ELSE b.old_base END
	ORDER BY b.ordinal, p.joined_seq`

// StreamBase implements chat.UserStreamLog.
func (db *DB) StreamBase(ctx context.Context, userID string, oldHorizon, maxHorizon uint64, tracked []chat.RoomPosition) (chat.StreamBase, error) {
	if !validID(userID) {
		return chat.StreamBase{}, chat.Errorf(chat.ENotFound, "user not found")
	}
	old, limit := xid8Arg(oldHorizon), xid8Arg(maxHorizon)
	ords := make([]int64, len(tracked))
	seqs := make([]int64, len(tracked))
	for i, p := range tracked {
		ords[i], seqs[i] = p.Ordinal, p.Seq
	}
	rows, err := db.pool.Query(ctx, streamBaseSQL, userID, old, ords, seqs, limit)
	if err != nil {
		return chat.StreamBase{}, dbError(err, "read stream base")
	}
	defer rows.Close()
	var base chat.StreamBase
	horizon := ""
	for rows.Next() {
		var r chat.BaseRoom
		var p chat.Period
		if err := rows.Scan(&horizon, &r.RoomID, &r.Ordinal, &r.LastSeq, &r.Tracked, &r.OldBase, &r.Base, &p.Joined, &p.Left); err != nil {
			return chat.StreamBase{}, dbError(err, "read stream base")
		}
		if n := len(base.Rooms); n > 0 && base.Rooms[n-1].RoomID == r.RoomID {
			base.Rooms[n-1].Periods = append(base.Rooms[n-1].Periods, p)
			continue
		}
		r.Periods = []chat.Period{p}
		base.Rooms = append(base.Rooms, r)
	}
	if err := rows.Err(); err != nil {
		return chat.StreamBase{}, dbError(err, "read stream base")
	}
	if horizon == "" {
		// No rooms: the horizon alone.
		err = db.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&horizon)
		if err != nil {
			return chat.StreamBase{}, dbError(err, "read horizon")
		}
	}
	if base.Horizon, err = strconv.ParseUint(horizon, 10, 64); err != nil {
		return chat.StreamBase{}, fmt.Errorf("parse horizon %q: %w", horizon, err)
	}
	if maxHorizon != 0 {
		// The rooms' query capped it already; the horizon alone is not.
		base.Horizon = min(base.Horizon, maxHorizon)
	}
	return base, nil
}

// xid8Arg is an xid8 as a query argument: text, nil for 0 (none).
func xid8Arg(x uint64) *string {
	if x == 0 {
		return nil
	}
	s := strconv.FormatUint(x, 10)
	return &s
}

// heldHorizonsSQL reads the horizon and the hx of each held room's next
// event (one probe of the room_events primary key each): one row with a
// NULL ordinal when no room has one.
const heldHorizonsSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text, n.ordinal, n.hx::text
	FROM (SELECT 1) one LEFT JOIN (
		SELECT t.ordinal, e.hx FROM unnest($1::bigint[], $2::bigint[]) AS t(ordinal, seq)
		JOIN rooms r ON r.ordinal = t.ordinal
		JOIN room_events e ON e.room_id = r.id AND e.seq = t.seq + 1) n ON true`

// HeldHorizons implements chat.UserStreamLog.
func (db *DB) HeldHorizons(ctx context.Context, held []chat.RoomPosition) (uint64, map[int64]uint64, error) {
	ords := make([]int64, len(held))
	seqs := make([]int64, len(held))
	for i, p := range held {
		ords[i], seqs[i] = p.Ordinal, p.Seq
	}
	rows, err := db.pool.Query(ctx, heldHorizonsSQL, ords, seqs)
	if err != nil {
		return 0, nil, dbError(err, "read held rooms' horizons")
	}
	defer rows.Close()
	next := make(map[int64]uint64, len(held))
	var horizon string
	for rows.Next() {
		var ord *int64
		var hx *string
		if err := rows.Scan(&horizon, &ord, &hx); err != nil {
			return 0, nil, dbError(err, "read held rooms' horizons")
		}
		if ord == nil {
			continue
		}
		if next[*ord], err = strconv.ParseUint(*hx, 10, 64); err != nil {
			return 0, nil, fmt.Errorf("parse hx %q: %w", *hx, err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, dbError(err, "read held rooms' horizons")
	}
	h, err := strconv.ParseUint(horizon, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("parse horizon %q: %w", horizon, err)
	}
	return h, next, nil
}

// ClusterID identifies the database cluster (its system identifier, which
// a dump restored elsewhere does not keep); user stream cursors are bound
// to it because their horizons are transaction ids of this cluster.
func (db *DB) ClusterID(ctx context.Context) (string, error) {
	var id string
	err := db.pool.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&id)
	if err == pgx.ErrNoRows || id == "" {
		return "", fmt.Errorf("read cluster id: none")
	}
	return id, dbError(err, "read cluster id")
}
