package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// messageSelect reads messages m with their authors in the columns
// scanMessage reads: the current state, with reactions counted per key and
// me for the viewer given by the SQL expression viewer (NULL for none, as
// in stream data), then the columns in extra.
func messageSelect(viewer string, extra ...string) string {
	more := ""
	for _, c := range extra {
		more += ", " + c
	}
	return `SELECT m.id, m.room_id, m.seq, u.id, u.username, u.display_name, m.body, COALESCE(m.client_id, ''),
		COALESCE(m.reply_to::text, ''), m.created_at, m.edited_at, m.deleted_at,
		(SELECT COALESCE(json_agg(json_build_object('key', x.key, 'count', x.n, 'me', x.me) ORDER BY x.first, x.key), '[]')
			FROM (SELECT key, count(*) AS n, bool_or(user_id = ` + viewer + `) AS me, min(created_at) AS first
				FROM reactions WHERE message_id = m.id GROUP BY key) x)` + more + `
		FROM messages m JOIN users u ON u.id = m.author_id `
}

// scanMessage scans the columns of messageSelect, then extra.
func scanMessage(row pgx.Row, extra ...any) (chat.Message, error) {
	var m chat.Message
	err := row.Scan(append([]any{&m.ID, &m.RoomID, &m.Seq, &m.Author.ID, &m.Author.Username, &m.Author.DisplayName,
		&m.Body, &m.ClientID, &m.ReplyTo, &m.CreatedAt, &m.EditedAt, &m.DeletedAt, &m.Reactions}, extra...)...)
	m.CreatedAt = m.CreatedAt.UTC()
	for _, t := range []*time.Time{m.EditedAt, m.DeletedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	if m.Reactions == nil {
		m.Reactions = []chat.Reaction{}
	}
	return m, err
}

// messageLookup reads message messageID of room roomID as viewer sees it
// into msg; found reports whether there is one (tombstones included).
func messageLookup(roomID, messageID, viewer string, msg *chat.Message, found *bool) lookup {
	return lookup{
		sql:  messageSelect("$3::uuid") + `WHERE m.id = $1 AND m.room_id = $2`,
		args: []any{messageID, roomID, viewer},
		scan: func(row pgx.Row) error {
			var err error
			*msg, err = scanMessage(row)
			*found = err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		},
	}
}

func messageNotFound() error { return chat.Errorf(chat.ENotFound, "message not found") }

// shared is msg as stream data carries it: without the per-viewer me.
func shared(msg chat.Message) chat.Message {
	rs := make([]chat.Reaction, len(msg.Reactions))
	for i, r := range msg.Reactions {
		rs[i] = chat.Reaction{Key: r.Key, Count: r.Count}
	}
	msg.Reactions = rs
	return msg
}

// bodyHash is what a repeated client_id is compared with: the hash of the
// body first posted, which outlives edits and deletion.
func bodyHash(body string) []byte {
	h := sha256.Sum256([]byte(body))
	return h[:]
}

// appendMessageSQL records a post in one statement: it takes the message's
// seq and its ordinal among the room's messages (bumping the room's message
// count), stores the message event and the message's current state, moves
// the poster's read marker to it (silently), and returns the database's
// clock (committedSQL); like appendSQL it does not NOTIFY: the event is
// announced after the commit, in a batch (see announce.go). The event's hx
// is set as appendSQL sets it. Its first nine arguments are appendSQL's;
// then body, body hash and reply_to.
const appendMessageSQL = `WITH r AS (
		UPDATE rooms SET last_seq = $2, member_count = $8, message_count = message_count + 1,
			last_hx = greatest(last_hx, pg_current_xact_id())
		WHERE id = $1 RETURNING message_count, last_hx
	), e AS (
		INSERT INTO room_events (room_id, seq, type, data, subject_id, client_id, created_at, message_id, hx)
		SELECT $1::uuid, $2::bigint, $3::text, $4::text, $5::uuid, $6::text, $7::timestamptz, $9::uuid, r.last_hx FROM r
	), m AS (
		INSERT INTO messages (id, room_id, seq, ordinal, author_id, body, body_hash, client_id, reply_to, created_at)
		SELECT $9, $1, $2, r.message_count, $5, $10, $11, $6, $12, $7 FROM r
	), rd AS (
		UPDATE room_members SET last_read_seq = $2, last_read_ordinal = r.message_count FROM r
		WHERE room_id = $1 AND user_id = $5
	)
	` + committedSQL

// PostMessage appends a message to the room's log. A client_id seen before
// from the same author returns the message's current state (created false)
// when the body matches the one first posted and EConflict when it does not.
//
// Posting is the hot path: posts go through the replica's group commit
// (see groupcommit.go), which answers each on its own.
func (db *DB) PostMessage(ctx context.Context, userID, roomID string, in chat.MessagePost) (chat.Message, bool, error) {
	if err := chat.CheckText("body.body", in.Body, chat.BodyMin, chat.BodyMax); err != nil {
		return chat.Message{}, false, err
	}
	if err := chat.CheckText("body.client_id", in.ClientID, 0, chat.ClientIDMax); err != nil {
		return chat.Message{}, false, err
	}
	if in.ReplyTo != "" && !validID(in.ReplyTo) {
		return chat.Message{}, false, chat.Invalid("body.reply_to", "reply_to names no message of this room")
	}
	if !validID(roomID) {
		return chat.Message{}, false, roomNotFound()
	}
	if !validID(userID) {
		return chat.Message{}, false, chat.Errorf(chat.ENotFound, "user not found")
	}
	return db.group.post(&postRequest{ctx: ctx, userID: userID, roomID: roomID, in: in}).unpack()
}

func (r postResult) unpack() (chat.Message, bool, error) { return r.msg, r.created, r.err }

// postAlone posts one message in a transaction of its own, charged as w
// (see openRoomPipe): a group's posts go this way when their group failed
// (see groupcommit.go). It takes two round trips: the first charges the
// write limit (a repeated client_id is free), locks the room and reads the
// caller's role and author, any message under the same client_id and the
// room of the message replied to; the second appends the message and
// commits.
func (db *DB) postAlone(ctx context.Context, userID, roomID string, in chat.MessagePost, w writer) (chat.Message, bool, error) {
	var (
		role           chat.Role
		author         chat.Author
		stored         chat.Message
		storedHash     []byte
		hasStored      bool
		replyRoom      string
		hasReplyTarget bool
	)
	lookups := []lookup{{
		sql: `SELECT COALESCE((SELECT role FROM room_members WHERE room_id = $1 AND user_id = u.id), ''),
			u.id, u.username, u.display_name FROM users u WHERE u.id = $2`,
		args: []any{roomID, userID},
		scan: func(row pgx.Row) error {
			err := row.Scan(&role, &author.ID, &author.Username, &author.DisplayName)
			if errors.Is(err, pgx.ErrNoRows) {
				return chat.Errorf(chat.ENotFound, "user not found")
			}
			return err
		},
	}}
	if in.ClientID != "" {
		lookups = append(lookups, lookup{
			sql:  messageSelect("$2::uuid", "m.body_hash") + `WHERE m.room_id = $1 AND m.author_id = $2 AND m.client_id = $3`,
			args: []any{roomID, userID, in.ClientID},
			scan: func(row pgx.Row) error {
				var err error
				stored, err = scanMessage(row, &storedHash)
				hasStored = err == nil
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				return err
			},
		})
	}
	if in.ReplyTo != "" {
		lookups = append(lookups, lookup{
			sql:  `SELECT room_id::text FROM messages WHERE id = $1`,
			args: []any{in.ReplyTo},
			scan: func(row pgx.Row) error {
				err := row.Scan(&replyRoom)
				hasReplyTarget = err == nil
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				return err
			},
		})
	}
	p, err := db.openRoomPipe(ctx, roomID, w, lookups...)
	if err != nil {
		return chat.Message{}, false, err
	}
	room := p.Room
	if err := chat.Authorize(room.Visibility, role, chat.NeedMember); err != nil {
		p.Refuse(ctx)
		return chat.Message{}, false, err
	}
	if hasStored {
		p.Refuse(ctx)
		if !bytes.Equal(storedHash, bodyHash(in.Body)) {
			return chat.Message{}, false, chat.Errorf(chat.EConflict, "client_id was already used for a different message")
		}
		return stored, false, nil
	}
	if in.ReplyTo != "" && (!hasReplyTarget || replyRoom != room.ID) {
		p.Refuse(ctx)
		return chat.Message{}, false, chat.Invalid("body.reply_to", "reply_to names no message of this room")
	}

	at := now()
	msg := chat.Message{ID: uuid.NewString(), RoomID: room.ID, Author: author, Body: in.Body, ClientID: in.ClientID,
		ReplyTo: in.ReplyTo, CreatedAt: at, Reactions: []chat.Reaction{}}
	ev, args, err := nextEvent(&room, chat.EventMessage, eventKeys{subjectID: userID, clientID: in.ClientID, messageID: msg.ID}, at,
		func(seq int64) any {
			msg.Seq = seq
			return msg
		})
	if err != nil {
		p.Refuse(ctx)
		return chat.Message{}, false, err
	}
	var b pgx.Batch
	b.Queue(appendMessageSQL, append(args, in.Body, bodyHash(in.Body), nullable(in.ReplyTo))...)
	var committedUS int64
	if err := p.Commit(ctx, &b, "append message", &committedUS); err != nil {
		return chat.Message{}, false, err
	}
	ev.CommittedAt = time.UnixMicro(committedUS)
	db.ann.announce(ev)
	return msg, true, nil
}

// FindMessage returns one message's current state.
func (db *DB) FindMessage(ctx context.Context, userID, roomID, messageID string) (chat.Message, error) {
	room, err := db.readRoom(ctx, userID, roomID, chat.NeedMember)
	if err != nil {
		return chat.Message{}, err
	}
	if !validID(messageID) {
		return chat.Message{}, messageNotFound()
	}
	msg, err := scanMessage(db.pool.QueryRow(ctx, messageSelect("$3::uuid")+`WHERE m.id = $1 AND m.room_id = $2`, messageID, room.ID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, messageNotFound()
	}
	return msg, dbError(err, "read message")
}

// FindMessages pages through a room's messages in their current state,
// always returned in ascending seq order.
func (db *DB) FindMessages(ctx context.Context, userID, roomID string, f chat.MessageFilter) ([]chat.Message, bool, error) {
	if f.Before != nil && f.After != nil {
		return nil, false, chat.Invalid("query.after", "give before or after, not both")
	}
	room, err := db.readRoom(ctx, userID, roomID, chat.NeedMember)
	if err != nil {
		return nil, false, err
	}
	q := messageSelect("$2::uuid") + `WHERE m.room_id = $1 `
	var rows pgx.Rows
	switch {
	case f.After != nil:
		rows, err = db.pool.Query(ctx, q+`AND m.seq > $3 ORDER BY m.seq LIMIT $4`, room.ID, userID, *f.After, f.Limit+1)
	case f.Before != nil:
		rows, err = db.pool.Query(ctx, q+`AND m.seq < $3 ORDER BY m.seq DESC LIMIT $4`, room.ID, userID, *f.Before, f.Limit+1)
	default:
		rows, err = db.pool.Query(ctx, q+`ORDER BY m.seq DESC LIMIT $3`, room.ID, userID, f.Limit+1)
	}
	if err != nil {
		return nil, false, dbError(err, "read history")
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Message, error) { return scanMessage(row) })
	if err != nil {
		return nil, false, dbError(err, "read history")
	}
	hasMore := len(msgs) > f.Limit
	if hasMore {
		msgs = msgs[:f.Limit]
	}
	if f.After == nil {
		slices.Reverse(msgs)
	}
	return msgs, hasMore, nil
}
