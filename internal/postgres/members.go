package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// onlineSQL is whether member m is online: has a presence session on any
// replica (see presence.go).
const onlineSQL = `EXISTS (SELECT 1 FROM presence_sessions p WHERE p.user_id = m.user_id)`

func findMember(ctx context.Context, tx pgx.Tx, roomID, userID string) (chat.Member, error) {
	var m chat.Member
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+`, m.role, m.joined_at, m.last_read_seq, `+onlineSQL+` FROM room_members m
		JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 AND m.user_id = $2`, roomID, userID), &m.Role, &m.JoinedAt, &m.LastReadSeq, &m.Online)
	m.User, m.JoinedAt = u, m.JoinedAt.UTC()
	return m, err
}

// addMember inserts userID as a member of the locked room and records
// member.joined. The user must exist. The new member's read marker starts
// at their own member.joined: the room's history before it is not unread.
func addMember(ctx context.Context, tx *logTx, room *chat.Room, userID string) (chat.Member, error) {
	var online bool
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+`, EXISTS (SELECT 1 FROM presence_sessions p WHERE p.user_id = u.id)
		FROM users u WHERE u.id = $1`, userID), &online)
	if err != nil {
		return chat.Member{}, userError(err)
	}
	at := now()
	joinedSeq := room.LastSeq + 1
	if _, err := tx.Exec(ctx, `INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq, last_read_ordinal)
		VALUES ($1, $2, 'member', $3, $4, (SELECT message_count FROM rooms WHERE id = $1))`,
		room.ID, userID, at, joinedSeq); err != nil {
		return chat.Member{}, dbError(err, "insert member")
	}
	room.MemberCount++
	ev, err := appendEvent(ctx, tx, room, chat.EventMemberJoined, eventKeys{subjectID: userID}, at, func(seq int64) any {
		return chat.MemberJoined{RoomID: room.ID, Seq: seq, User: u, CreatedAt: at}
	})
	if err == nil {
		err = openPeriod(ctx, tx, userID, room.ID, ev.Seq)
	}
	return chat.Member{User: u, Role: chat.RoleMember, JoinedAt: at, LastReadSeq: joinedSeq, Online: online}, err
}

// removeMember deletes userID's membership of the locked room and records
// member.left.
func removeMember(ctx context.Context, tx *logTx, room *chat.Room, userID string, reason chat.LeaveReason) error {
	if _, err := tx.Exec(ctx, `DELETE FROM room_members WHERE room_id = $1 AND user_id = $2`, room.ID, userID); err != nil {
		return dbError(err, "delete member")
	}
	room.MemberCount--
	at := now()
	ev, err := appendEvent(ctx, tx, room, chat.EventMemberLeft, eventKeys{subjectID: userID}, at, func(seq int64) any {
		return chat.MemberLeft{RoomID: room.ID, Seq: seq, UserID: userID, Reason: reason, CreatedAt: at}
	})
	if err != nil {
		return err
	}
	return closePeriod(ctx, tx, userID, room.ID, ev.Seq)
}

// openPeriod records that userID's membership of the room began with the
// member.joined at seq; closePeriod that it ended with the member.left at
// seq. The user stream replays along these periods.
func openPeriod(ctx context.Context, tx pgx.Tx, userID, roomID string, seq int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO room_member_periods (user_id, room_id, joined_seq) VALUES ($1, $2, $3)`, userID, roomID, seq)
	return dbError(err, "open membership period")
}

func closePeriod(ctx context.Context, tx pgx.Tx, userID, roomID string, seq int64) error {
	_, err := tx.Exec(ctx, `UPDATE room_member_periods SET left_seq = $3 WHERE user_id = $1 AND room_id = $2 AND left_seq IS NULL`, userID, roomID, seq)
	return dbError(err, "close membership period")
}

// JoinRoom makes the caller a member of a public room; joining again
// returns the existing membership and records nothing.
func (db *DB) JoinRoom(ctx context.Context, userID, roomID string) (chat.Member, error) {
	var m chat.Member
	err := db.change(ctx, userID, roomID, chat.NeedVisible, func(tx *logTx, room *chat.Room, role chat.Role) error {
		var err error
		if role != "" {
			m, err = findMember(ctx, tx, room.ID, userID)
			return dbError(err, "find member")
		}
		m, err = addMember(ctx, tx, room, userID)
		return err
	})
	return m, err
}

// LeaveRoom ends the caller's membership; the owner cannot leave.
func (db *DB) LeaveRoom(ctx context.Context, userID, roomID string) error {
	return db.change(ctx, userID, roomID, chat.NeedVisible, func(tx *logTx, room *chat.Room, role chat.Role) error {
		switch role {
		case "":
			return chat.Errorf(chat.ENotFound, "you are not a member of this room")
		case chat.RoleOwner:
			return chat.Errorf(chat.EConflict, "the owner cannot leave the room; delete it instead")
		}
		return removeMember(ctx, tx, room, userID, chat.ReasonLeft)
	})
}

// FindMembers lists a room's members, oldest first.
func (db *DB) FindMembers(ctx context.Context, userID, roomID string) ([]chat.Member, error) {
	room, err := db.readRoom(ctx, userID, roomID, chat.NeedMember)
	if err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+userCols+`, m.role, m.joined_at, m.last_read_seq, `+onlineSQL+` FROM room_members m
		JOIN users u ON u.id = m.user_id WHERE m.room_id = $1 ORDER BY m.joined_at, u.username`, room.ID)
	if err != nil {
		return nil, dbError(err, "list members")
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Member, error) {
		var m chat.Member
		var joined time.Time
		u, err := scanUser(row, &m.Role, &joined, &m.LastReadSeq, &m.Online)
		m.User, m.JoinedAt = u, joined.UTC()
		return m, err
	})
	return members, dbError(err, "list members")
}

// AddMember lets the owner add a user; adding a member again changes nothing.
func (db *DB) AddMember(ctx context.Context, userID, roomID, memberID string) (chat.Member, error) {
	var m chat.Member
	err := db.change(ctx, userID, roomID, chat.NeedOwner, func(tx *logTx, room *chat.Room, _ chat.Role) error {
		if !validID(memberID) {
			return chat.Errorf(chat.ENotFound, "user not found")
		}
		var err error
		m, err = findMember(ctx, tx, room.ID, memberID)
		if !errors.Is(err, pgx.ErrNoRows) {
			return dbError(err, "find member")
		}
		m, err = addMember(ctx, tx, room, memberID)
		return err
	})
	return m, err
}

// RemoveMember lets the owner remove a member other than themselves.
func (db *DB) RemoveMember(ctx context.Context, userID, roomID, memberID string) error {
	return db.change(ctx, userID, roomID, chat.NeedOwner, func(tx *logTx, room *chat.Room, _ chat.Role) error {
		if memberID == room.OwnerID {
			return chat.Errorf(chat.EConflict, "the owner cannot be removed from the room")
		}
		if !validID(memberID) {
			return chat.Errorf(chat.ENotFound, "member not found")
		}
		if _, err := findMember(ctx, tx, room.ID, memberID); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return chat.Errorf(chat.ENotFound, "member not found")
			}
			return dbError(err, "find member")
		}
		return removeMember(ctx, tx, room, memberID, chat.ReasonRemoved)
	})
}
