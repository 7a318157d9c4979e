package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// PostMessage appends a message to the room's log. A client_id seen before
// from the same author returns the stored message (created false) when the
// body matches and EConflict when it does not. The client_id is checked
// under the room lock, so concurrent repeats store one message.
func (db *DB) PostMessage(ctx context.Context, userID, roomID string, in chat.MessagePost) (chat.Message, bool, error) {
	if err := chat.CheckText("body.body", in.Body, chat.BodyMin, chat.BodyMax); err != nil {
		return chat.Message{}, false, err
	}
	if err := chat.CheckText("body.client_id", in.ClientID, 0, chat.ClientIDMax); err != nil {
		return chat.Message{}, false, err
	}
	var msg chat.Message
	created := false
	err := db.change(ctx, userID, roomID, chat.NeedMember, func(tx pgx.Tx, room *chat.Room, _ chat.Role) error {
		if in.ClientID != "" {
			var data []byte
			err := tx.QueryRow(ctx, `SELECT data FROM room_events WHERE room_id = $1 AND subject_id = $2 AND client_id = $3`,
				room.ID, userID, in.ClientID).Scan(&data)
			if err == nil {
				if err := json.Unmarshal(data, &msg); err != nil {
					return fmt.Errorf("decode stored message: %w", err)
				}
				if msg.Body != in.Body {
					return chat.Errorf(chat.EConflict, "client_id was already used for a different message")
				}
				return nil
			}
			if err != pgx.ErrNoRows {
				return dbError(err, "find message by client_id")
			}
		}
		var author chat.Author
		if err := tx.QueryRow(ctx, `SELECT id, username, display_name FROM users WHERE id = $1`, userID).
			Scan(&author.ID, &author.Username, &author.DisplayName); err != nil {
			return userError(err)
		}
		at := now()
		msg = chat.Message{ID: uuid.NewString(), RoomID: room.ID, Author: author, Body: in.Body, ClientID: in.ClientID, CreatedAt: at}
		_, err := appendEvent(ctx, tx, room, chat.EventMessage, userID, in.ClientID, at, func(seq int64) any {
			msg.Seq = seq
			return msg
		})
		created = err == nil
		return err
	})
	return msg, created, err
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
