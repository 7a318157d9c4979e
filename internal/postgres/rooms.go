package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

var _ chat.RoomService = (*DB)(nil)

const roomCols = `r.id, r.name, r.topic, r.visibility, r.owner_id, r.member_count, r.last_seq, r.created_at`

func scanRoom(row pgx.Row, extra ...any) (chat.Room, error) {
	var r chat.Room
	err := row.Scan(append([]any{&r.ID, &r.Name, &r.Topic, &r.Visibility, &r.OwnerID, &r.MemberCount, &r.LastSeq, &r.CreatedAt}, extra...)...)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// lockRoomSQL reads a live room and takes its row lock, which serializes
// every change to the room and so makes commit order equal seq order.
const lockRoomSQL = `SELECT ` + roomCols + ` FROM rooms r WHERE r.id = $1 AND r.deleted_at IS NULL FOR NO KEY UPDATE`

func roomNotFound() error { return chat.Errorf(chat.ENotFound, "room not found") }

// loadRoom reads a live room and the caller's role in it ("" for none). With
// lock it takes the room's row lock first, which serializes every change to
// the room and so makes commit order equal seq order.
//
// Locked, the role is read by a second statement after the lock is held: in
// READ COMMITTED a statement that waited for a row lock re-reads only the
// locked row, so a role joined into the same statement would come from
// before the previous lock holder committed (a concurrent join would insert
// the member twice, a concurrent leave would still see a member).
func loadRoom(ctx context.Context, q querier, roomID, userID string, lock bool) (chat.Room, chat.Role, error) {
	if !validID(roomID) {
		return chat.Room{}, "", roomNotFound()
	}
	var room chat.Room
	var role chat.Role
	var err error
	if lock {
		room, err = scanRoom(q.QueryRow(ctx, lockRoomSQL, roomID))
		if err == nil {
			err = q.QueryRow(ctx, `SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2`, roomID, userID).Scan(&role)
			if err == pgx.ErrNoRows {
				role, err = "", nil
			} else if err != nil {
				return chat.Room{}, "", dbError(err, "load role")
			}
		}
	} else {
		room, err = scanRoom(q.QueryRow(ctx, `SELECT `+roomCols+`, COALESCE(m.role, '') FROM rooms r
			LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2
			WHERE r.id = $1 AND r.deleted_at IS NULL`, roomID, userID), &role)
	}
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return chat.Room{}, "", roomNotFound()
		}
		return chat.Room{}, "", dbError(err, "load room")
	}
	return room, role, nil
}

// readRoom loads a live room for a read and checks the caller may do an
// operation needing need in it.
func (db *DB) readRoom(ctx context.Context, userID, roomID string, need chat.Need) (chat.Room, error) {
	room, role, err := loadRoom(ctx, db.pool, roomID, userID, false)
	if err != nil {
		return chat.Room{}, err
	}
	return room, chat.Authorize(room.Visibility, role, need)
}

// logTx is a transaction that appends room events. They are announced
// after it commits (see inLogTx), never from inside it: every transaction
// that calls pg_notify takes a database-wide lock at its commit, so
// notifying commits are serialized across the whole cluster.
type logTx struct {
	pgx.Tx
	// events are the events appended, in seq order per room.
	events []chat.Event
}

// inLogTx runs fn in a transaction, as inTx does, and hands the events it
// appended to the announcer once it has committed. An event whose commit
// succeeded but whose answer was lost, or whose announcement is lost, is
// found by the listeners' sweep of the log (see sweep.go).
func (db *DB) inLogTx(ctx context.Context, fn func(tx *logTx) error) error {
	var ltx *logTx
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		ltx = &logTx{Tx: tx}
		return fn(ltx)
	})
	if err == nil {
		db.ann.announce(ltx.events...)
	}
	return err
}

// change runs fn on the locked room in a transaction after checking that the
// caller's role satisfies need; the events fn appends are announced after
// the commit.
func (db *DB) change(ctx context.Context, userID, roomID string, need chat.Need, fn func(tx *logTx, room *chat.Room, role chat.Role) error) error {
	return db.inLogTx(ctx, func(tx *logTx) error {
		room, role, err := loadRoom(ctx, tx, roomID, userID, true)
		if err != nil {
			return err
		}
		if err := chat.Authorize(room.Visibility, role, need); err != nil {
			return err
		}
		return fn(tx, &room, role)
	})
}

// appendSQL records an event: it stores the room's new counters and inserts
// the event in one statement, and returns the database's clock
// (committedSQL), which the event's announcement carries. It does not
// NOTIFY: the event is announced after its transaction commits, in a batch
// with the replica's other commits (see announce.go). Its arguments come
// from nextEvent.
//
// It also gives the event its hx, the room's horizon mark (see the 00005
// migration): the larger of this transaction's id and the room's previous
// mark, so hx never decreases along the room's seq.
const appendSQL = `WITH r AS (
		UPDATE rooms SET last_seq = $2, member_count = $8, last_hx = greatest(last_hx, pg_current_xact_id())
		WHERE id = $1::uuid RETURNING last_hx
	), e AS (
		INSERT INTO room_events (room_id, seq, type, data, subject_id, client_id, created_at, message_id, hx)
		SELECT $1::uuid, $2::bigint, $3::text, $4::text, $5::uuid, $6::text, $7::timestamptz, $9::uuid, r.last_hx FROM r
	)
	` + committedSQL

// committedSQL is the database's clock in microseconds, as an announced
// event's committed_us, from which listeners measure delivery lag.
const committedSQL = `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint`

// eventKeys are an event's indexed columns besides its room and seq: the
// user it is about (a member event's member, the author of a message, who
// changed one), a post's client_id, and the message it concerns.
type eventKeys struct {
	subjectID, clientID, messageID string
}

// nextEvent takes the room's next seq, room.LastSeq+1 (the caller holds the
// room lock), encodes the event whose data builds from that seq, and returns
// it with the arguments of appendSQL. The caller sets the event's
// CommittedAt from appendSQL's answer before announcing it.
func nextEvent(room *chat.Room, typ chat.EventType, keys eventKeys, at time.Time, data func(seq int64) any) (chat.Event, []any, error) {
	room.LastSeq++
	b, err := json.Marshal(data(room.LastSeq))
	if err != nil {
		return chat.Event{}, nil, fmt.Errorf("encode %s event: %w", typ, err)
	}
	ev := chat.Event{RoomID: room.ID, Seq: room.LastSeq, Type: typ, SubjectID: keys.subjectID, Data: b}
	return ev, []any{room.ID, room.LastSeq, string(typ), string(b), nullable(keys.subjectID), nullable(keys.clientID), at,
		room.MemberCount, nullable(keys.messageID)}, nil
}

// nullable is s, or NULL when it is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// appendEvent records the room's next event in tx (see nextEvent); tx
// announces it after the commit.
func appendEvent(ctx context.Context, tx *logTx, room *chat.Room, typ chat.EventType, keys eventKeys, at time.Time, data func(seq int64) any) (chat.Event, error) {
	ev, args, err := nextEvent(room, typ, keys, at, data)
	if err != nil {
		return chat.Event{}, err
	}
	var committedUS int64
	if err := tx.QueryRow(ctx, appendSQL, args...).Scan(&committedUS); err != nil {
		return chat.Event{}, dbError(err, "append "+string(typ)+" event")
	}
	ev.CommittedAt = time.UnixMicro(committedUS)
	tx.events = append(tx.events, ev)
	return ev, nil
}

// CreateRoom creates a room owned by userID, recording the owner's
// member.joined as seq 1.
func (db *DB) CreateRoom(ctx context.Context, userID string, in chat.RoomCreate) (chat.Room, error) {
	if err := checkRoomFields(&in.Name, &in.Topic); err != nil {
		return chat.Room{}, err
	}
	if in.Visibility != chat.Public && in.Visibility != chat.Private {
		return chat.Room{}, chat.Invalid("body.visibility", `visibility must be "public" or "private"`)
	}
	at := now()
	room := chat.Room{ID: uuid.NewString(), Name: in.Name, Topic: in.Topic, Visibility: in.Visibility, OwnerID: userID, MemberCount: 1, CreatedAt: at}
	err := db.inLogTx(ctx, func(tx *logTx) error {
		owner, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users u WHERE u.id = $1`, userID))
		if err != nil {
			return userError(err)
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO rooms (id, name, topic, visibility, owner_id, member_count, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)`,
			room.ID, room.Name, room.Topic, string(room.Visibility), userID, at); err != nil {
			return dbError(err, "insert room")
		}
		// The owner's marker starts at their member.joined, seq 1.
		if _, err := tx.Exec(ctx, `INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_seq) VALUES ($1, $2, 'owner', $3, 1)`,
			room.ID, userID, at); err != nil {
			return dbError(err, "insert owner")
		}
		ev, err := appendEvent(ctx, tx, &room, chat.EventMemberJoined, eventKeys{subjectID: userID}, at, func(seq int64) any {
			return chat.MemberJoined{RoomID: room.ID, Seq: seq, User: owner, CreatedAt: at}
		})
		if err != nil {
			return err
		}
		return openPeriod(ctx, tx, userID, room.ID, ev.Seq)
	})
	var read, unread int64 = 1, 0
	room.LastReadSeq, room.UnreadCount = &read, &unread
	return room, err
}

func checkRoomFields(name, topic *string) error {
	if name != nil {
		if err := chat.CheckText("body.name", *name, chat.RoomNameMin, chat.RoomNameMax); err != nil {
			return err
		}
	}
	if topic != nil {
		return chat.CheckText("body.topic", *topic, 0, chat.TopicMax)
	}
	return nil
}

// FindRoom returns a room the caller may see, with the caller's read state
// when they are a member.
func (db *DB) FindRoom(ctx context.Context, userID, roomID string) (chat.Room, error) {
	if !validID(roomID) {
		return chat.Room{}, roomNotFound()
	}
	var role chat.Role
	room, err := scanViewedRoom(db.pool.QueryRow(ctx, `SELECT `+roomCols+`, `+viewerCols+`, COALESCE(m.role, '') FROM rooms r
		LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2
		WHERE r.id = $1 AND r.deleted_at IS NULL`, roomID, userID), &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Room{}, roomNotFound()
	}
	if err != nil {
		return chat.Room{}, dbError(err, "load room")
	}
	return room, chat.Authorize(room.Visibility, role, chat.NeedVisible)
}

// scanViewedRoom scans roomCols followed by viewerCols (NULL for a
// non-member) and extra.
func scanViewedRoom(row pgx.Row, extra ...any) (chat.Room, error) {
	var lastRead, unread *int64
	r, err := scanRoom(row, append([]any{&lastRead, &unread}, extra...)...)
	r.LastReadSeq, r.UnreadCount = lastRead, unread
	return r, err
}

// FindRooms lists rooms newest first. The cursor is opaque: the creation
// time and id of the last room of the previous page.
func (db *DB) FindRooms(ctx context.Context, userID string, f chat.RoomFilter) ([]chat.Room, string, error) {
	at, id, err := decodeCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var sql string
	args := []any{at, id, f.Limit + 1, userID}
	switch f.Scope {
	case chat.ScopeJoined, "":
		sql = `SELECT ` + roomCols + `, ` + viewerCols + ` FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = $4
			WHERE r.deleted_at IS NULL AND (r.created_at, r.id) < ($1, $2)
			ORDER BY r.created_at DESC, r.id DESC LIMIT $3`
	case chat.ScopePublic:
		// Rooms the caller has joined carry their read state.
		sql = `SELECT ` + roomCols + `, ` + viewerCols + ` FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $4
			WHERE r.visibility = 'public' AND r.deleted_at IS NULL AND (r.created_at, r.id) < ($1, $2)
			ORDER BY r.created_at DESC, r.id DESC LIMIT $3`
	default:
		return nil, "", chat.Invalid("query.scope", `scope must be "joined" or "public"`)
	}
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", dbError(err, "list rooms")
	}
	rooms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Room, error) { return scanViewedRoom(row) })
	if err != nil {
		return nil, "", dbError(err, "list rooms")
	}
	next := ""
	if len(rooms) > f.Limit {
		rooms = rooms[:f.Limit]
		last := rooms[len(rooms)-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return rooms, next, nil
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "," + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	if c == "" {
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "ffffffff-ffff-ffff-ffff-ffffffffffff", nil
	}
	bad := chat.Invalid("query.cursor", "cursor is not one this server returned")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	micros, id, ok := strings.Cut(string(b), ",")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || n < 0 || !validID(id) {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// UpdateRoom changes a room's name or topic and records room.updated.
func (db *DB) UpdateRoom(ctx context.Context, userID, roomID string, in chat.RoomUpdate) (chat.Room, error) {
	if err := checkRoomFields(in.Name, in.Topic); err != nil {
		return chat.Room{}, err
	}
	var out chat.Room
	err := db.change(ctx, userID, roomID, chat.NeedOwner, func(tx *logTx, room *chat.Room, _ chat.Role) error {
		if (in.Name == nil || *in.Name == room.Name) && (in.Topic == nil || *in.Topic == room.Topic) {
			// Nothing changes: answer with the room and record no event.
			out = *room
			return viewRoom(ctx, tx, &out, userID)
		}
		if in.Name != nil {
			room.Name = *in.Name
		}
		if in.Topic != nil {
			room.Topic = *in.Topic
		}
		if _, err := tx.Exec(ctx, `UPDATE rooms SET name = $2, topic = $3 WHERE id = $1`, room.ID, room.Name, room.Topic); err != nil {
			return dbError(err, "update room")
		}
		_, err := appendEvent(ctx, tx, room, chat.EventRoomUpdated, eventKeys{}, now(), func(seq int64) any {
			r := *room
			r.LastSeq = seq
			return chat.RoomUpdated{Room: r, RoomID: r.ID, Seq: seq}
		})
		if err != nil {
			return err
		}
		out = *room
		return viewRoom(ctx, tx, &out, userID)
	})
	return out, err
}

// viewRoom adds the member userID's read state to room.
func viewRoom(ctx context.Context, q querier, room *chat.Room, userID string) error {
	var read, unread int64
	err := q.QueryRow(ctx, `SELECT `+viewerCols+` FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = $2
		WHERE r.id = $1`, room.ID, userID).Scan(&read, &unread)
	if err != nil {
		return dbError(err, "read marker")
	}
	room.LastReadSeq, room.UnreadCount = &read, &unread
	return nil
}

// DeleteRoom soft-deletes a room, keeping its log, and records room.deleted.
func (db *DB) DeleteRoom(ctx context.Context, userID, roomID string) error {
	return db.change(ctx, userID, roomID, chat.NeedOwner, func(tx *logTx, room *chat.Room, _ chat.Role) error {
		if _, err := tx.Exec(ctx, `UPDATE rooms SET deleted_at = now() WHERE id = $1`, room.ID); err != nil {
			return dbError(err, "delete room")
		}
		_, err := appendEvent(ctx, tx, room, chat.EventRoomDeleted, eventKeys{}, now(), func(seq int64) any {
			return chat.RoomDeleted{RoomID: room.ID, Seq: seq}
		})
		return err
	})
}
