package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-chat/parley/internal/chat"
)

// PostMessage appends a message to the room's log. A client_id seen before
// from the same author returns the stored message (created false) when the
// body matches and EConflict when it does not.
//
// Posting is the hot path, so it takes two round trips instead of one per
// statement: the first pipelines BEGIN, the room lock, and (after the lock,
// so it sees every earlier commit) the caller's role, the author and any
// message under the same client_id; the second appends the event and
// commits. The room lock is held for about one round trip.
func (db *DB) PostMessage(ctx context.Context, userID, roomID string, in chat.MessagePost) (chat.Message, bool, error) {
	if err := chat.CheckText("body.body", in.Body, chat.BodyMin, chat.BodyMax); err != nil {
		return chat.Message{}, false, err
	}
	if err := chat.CheckText("body.client_id", in.ClientID, 0, chat.ClientIDMax); err != nil {
		return chat.Message{}, false, err
	}
	if !validID(roomID) {
		return chat.Message{}, false, roomNotFound()
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return chat.Message{}, false, dbError(err, "acquire connection")
	}
	// A connection released inside a transaction is destroyed by the pool,
	// which rolls the transaction back: the path for unexpected errors.
	defer conn.Release()

	var b pgx.Batch
	b.Queue(`BEGIN`)
	b.Queue(lockRoomSQL, roomID)
	b.Queue(`SELECT COALESCE((SELECT role FROM room_members WHERE room_id = $1 AND user_id = u.id), ''),
			u.id, u.username, u.display_name,
			(SELECT data FROM room_events WHERE room_id = $1 AND subject_id = u.id AND client_id = $3)
		FROM users u WHERE u.id = $2`, roomID, userID, in.ClientID)
	br := conn.SendBatch(ctx, &b)
	var (
		room   chat.Room
		role   chat.Role
		author chat.Author
		stored []byte
	)
	_, err = br.Exec()
	if err == nil {
		room, err = scanRoom(br.QueryRow())
	}
	if err == nil {
		err = br.QueryRow().Scan(&role, &author.ID, &author.Username, &author.DisplayName, &stored)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	// rollback ends the transaction on the paths that refuse the post, so
	// the connection goes back to the pool.
	rollback := func() {
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		if _, err := conn.Exec(rctx, `ROLLBACK`); err != nil {
			conn.Conn().PgConn().Close(rctx) //nolint:errcheck // the pool drops it either way
		}
	}
	refuse := func(err error) (chat.Message, bool, error) {
		rollback()
		return chat.Message{}, false, err
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows) && room.ID == "":
		return refuse(roomNotFound())
	case errors.Is(err, pgx.ErrNoRows):
		return refuse(chat.Errorf(chat.ENotFound, "user not found"))
	case err != nil:
		return chat.Message{}, false, dbError(err, "post message")
	}
	if err := chat.Authorize(room.Visibility, role, chat.NeedMember); err != nil {
		return refuse(err)
	}
	if stored != nil {
		var msg chat.Message
		if err := json.Unmarshal(stored, &msg); err != nil {
			return chat.Message{}, false, fmt.Errorf("decode stored message: %w", err)
		}
		if msg.Body != in.Body {
			return refuse(chat.Errorf(chat.EConflict, "client_id was already used for a different message"))
		}
		rollback()
		return msg, false, nil
	}

	at := now()
	msg := chat.Message{ID: uuid.NewString(), RoomID: room.ID, Author: author, Body: in.Body, ClientID: in.ClientID, CreatedAt: at}
	_, args, err := nextEvent(&room, chat.EventMessage, userID, in.ClientID, at, func(seq int64) any {
		msg.Seq = seq
		return msg
	})
	if err != nil {
		return refuse(err)
	}
	b = pgx.Batch{}
	b.Queue(appendSQL, args...)
	b.Queue(`COMMIT`)
	br = conn.SendBatch(ctx, &b)
	_, err = br.Exec()
	if err == nil {
		// In an aborted transaction COMMIT answers ROLLBACK, not an error.
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("commit answered %q", tag.String())
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return chat.Message{}, false, dbError(err, "append message")
	}
	return msg, true, nil
}

// FindMessages pages through a room's messages, always returned in
// ascending seq order.
func (db *DB) FindMessages(ctx context.Context, userID, roomID string, f chat.MessageFilter) ([]chat.Message, bool, error) {
	if f.Before != nil && f.After != nil {
		return nil, false, chat.Invalid("query.after", "give before or after, not both")
	}
	room, err := db.readRoom(ctx, userID, roomID, chat.NeedMember)
	if err != nil {
		return nil, false, err
	}
	const q = `SELECT data FROM room_events WHERE room_id = $1 AND type = 'message' `
	var rows pgx.Rows
	switch {
	case f.After != nil:
		rows, err = db.pool.Query(ctx, q+`AND seq > $2 ORDER BY seq LIMIT $3`, room.ID, *f.After, f.Limit+1)
	case f.Before != nil:
		rows, err = db.pool.Query(ctx, q+`AND seq < $2 ORDER BY seq DESC LIMIT $3`, room.ID, *f.Before, f.Limit+1)
	default:
		rows, err = db.pool.Query(ctx, q+`ORDER BY seq DESC LIMIT $2`, room.ID, f.Limit+1)
	}
	if err != nil {
		return nil, false, dbError(err, "read history")
	}
	msgs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Message, error) {
		var data []byte
		var m chat.Message
		if err := row.Scan(&data); err != nil {
			return m, err
		}
		return m, json.Unmarshal(data, &m)
	})
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
