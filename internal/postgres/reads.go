package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// unreadSQL is a member's unread count in a room, for rooms r and the
// member's room_members row m: arithmetic on message ordinals, not a scan of
// the unread messages. rooms.message_count is the room's last message
// ordinal and m.last_read_ordinal the ordinal at the member's marker; the
// messages between them are the unread ones, less those deleted since (a
// partial index holds only deleted messages). The caller's own messages
// need no correction: posting moves the poster's marker to the new message,
// and markers only move forward, so none lies after the marker.
//
// For a non-member (m from an outer join) it is NULL.
const unreadSQL = `(r.message_count - m.last_read_ordinal - (SELECT count(*) FROM messages d
	WHERE d.room_id = r.id AND d.seq > m.last_read_seq AND d.deleted_at IS NOT NULL))`

// viewerCols are the caller's read state in a room, NULL for a non-member.
const viewerCols = `m.last_read_seq, ` + unreadSQL

// markerOrdinalSQL is the message ordinal at seq $2 of room $1: how many of
// its messages have a seq up to $2.
const markerOrdinalSQL = `COALESCE((SELECT ordinal FROM messages WHERE room_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1), 0)`

// moveMarkerSQL moves member $3's marker in room $1 forward to seq $2; a
// marker already there or beyond stays. It answers the member's read state
// after the move, and whether it moved. (The statement's snapshot predates
// its own update, hence the COALESCE over the moved row.)
const moveMarkerSQL = `WITH mv AS (
		UPDATE room_members SET last_read_seq = $2, last_read_ordinal = ` + markerOrdinalSQL + `
		WHERE room_id = $1 AND user_id = $3 AND last_read_seq < $2
		RETURNING room_id, user_id, last_read_seq, last_read_ordinal
	)
	SELECT COALESCE(mv.last_read_seq, m.last_read_seq),
		r.message_count - COALESCE(mv.last_read_ordinal, m.last_read_ordinal) - (SELECT count(*) FROM messages d
			WHERE d.room_id = r.id AND d.seq > COALESCE(mv.last_read_seq, m.last_read_seq) AND d.deleted_at IS NOT NULL),
		mv.room_id IS NOT NULL
	FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = $3
	LEFT JOIN mv ON true
	WHERE r.id = $1`

// moveMarker is the one place a member's read marker moves on request (a
// post moves the poster's own, silently, inside the post). It returns the
// read state after the move and whether the marker moved, which is when a
// member.read signal is due.
func moveMarker(ctx context.Context, q querier, roomID, userID string, seq int64) (chat.ReadState, bool, error) {
	rs := chat.ReadState{RoomID: roomID}
	var moved bool
	err := q.QueryRow(ctx, moveMarkerSQL, roomID, seq, userID).Scan(&rs.LastReadSeq, &rs.UnreadCount, &moved)
	if errors.Is(err, pgx.ErrNoRows) {
		// The membership ended between the check and the move.
		return chat.ReadState{}, false, chat.Errorf(chat.EForbidden, "you are not a member of this room")
	}
	return rs, moved, dbError(err, "move read marker")
}

// MarkRead moves the caller's marker forward to seq; a seq below it answers
// the state unchanged, one beyond the room's last seq is refused.
func (db *DB) MarkRead(ctx context.Context, userID, roomID string, seq int64) (chat.ReadState, error) {
	if seq < 0 {
		return chat.ReadState{}, chat.Invalid("body.seq", "seq must not be negative")
	}
	room, err := db.readRoom(ctx, userID, roomID, chat.NeedMember)
	if err != nil {
		return chat.ReadState{}, err
	}
	if seq > room.LastSeq {
		return chat.ReadState{}, chat.Invalid("body.seq", "seq %d is beyond the room's last seq %d", seq, room.LastSeq)
	}
	rs, moved, err := moveMarker(ctx, db.pool, room.ID, userID, seq)
	if err == nil && moved && db.signals != nil {
		// A read receipt for the other members' streams.
		db.signals.MemberRead(room.ID, userID, rs.LastReadSeq)
	}
	return rs, err
}

// FindUnread sums the caller's unread counts and lists the rooms that have
// any, newest room first.
func (db *DB) FindUnread(ctx context.Context, userID string) (int64, []chat.ReadState, error) {
	if !validID(userID) {
		return 0, nil, chat.Errorf(chat.ENotFound, "user not found")
	}
	rows, err := db.pool.Query(ctx, `SELECT id, last_read_seq, unread FROM (
			SELECT r.id, r.created_at, `+viewerCols+` AS unread
			FROM room_members m JOIN rooms r ON r.id = m.room_id
			WHERE m.user_id = $1 AND r.deleted_at IS NULL
		) x WHERE unread > 0 ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return 0, nil, dbError(err, "read unread counts")
	}
	states, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.ReadState, error) {
		var rs chat.ReadState
		err := row.Scan(&rs.RoomID, &rs.LastReadSeq, &rs.UnreadCount)
		return rs, err
	})
	if err != nil {
		return 0, nil, dbError(err, "read unread counts")
	}
	var total int64
	for _, rs := range states {
		total += rs.UnreadCount
	}
	return total, states, nil
}
