package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// openMessagePipe opens a room pipe (see roomPipe) for a change to message
// messageID needing need, and checks it: the caller may do it in the room,
// the message exists there and is not deleted, and (for the author needs)
// the caller may change this message. extra lookups ride along. The change
// counts against the caller's write limit.
func (db *DB) openMessagePipe(ctx context.Context, userID, roomID, messageID string, need chat.Need, extra ...lookup) (*roomPipe, chat.Message, error) {
	var (
		role  chat.Role
		msg   chat.Message
		found bool
	)
	p, err := db.openRoomPipe(ctx, roomID, writer{userID: userID}, append([]lookup{
		roleLookup(roomID, userID, &role),
		messageLookup(roomID, messageID, userID, &msg, &found),
	}, extra...)...)
	if err != nil {
		return nil, chat.Message{}, err
	}
	err = chat.Authorize(p.Room.Visibility, role, need)
	if err == nil && (!found || msg.Deleted()) {
		err = messageNotFound()
	}
	if err == nil {
		err = chat.AuthorizeAuthor(role, need, msg.Author.ID == userID)
	}
	if err != nil {
		p.Refuse(ctx)
		return nil, chat.Message{}, err
	}
	return p, msg, nil
}

// EditMessage replaces the body of the caller's message and records
// message.edited, carrying the message after the edit. It takes two round
// trips, like a post.
func (db *DB) EditMessage(ctx context.Context, userID, roomID, messageID, body string) (chat.Message, error) {
	if err := chat.CheckText("body.body", body, chat.BodyMin, chat.BodyMax); err != nil {
		return chat.Message{}, err
	}
	if !validID(messageID) {
		if !validID(roomID) {
			return chat.Message{}, roomNotFound()
		}
		messageID = nilID // names nothing; the room is still checked first
	}
	p, msg, err := db.openMessagePipe(ctx, userID, roomID, messageID, chat.NeedAuthor)
	if err != nil {
		return chat.Message{}, err
	}
	if msg.Body == body {
		// Nothing changes: answer with the message and record no event.
		p.Refuse(ctx)
		return msg, nil
	}
	at := now()
	msg.Body, msg.EditedAt = body, &at
	room := p.Room
	ev, args, err := nextEvent(&room, chat.EventMessageEdited, eventKeys{subjectID: userID, messageID: msg.ID}, at, func(seq int64) any {
		return chat.MessageEdited{RoomID: room.ID, Seq: seq, Message: shared(msg)}
	})
	if err != nil {
		p.Refuse(ctx)
		return chat.Message{}, err
	}
	// The event goes first, so Commit reads its clock.
	var b pgx.Batch
	b.Queue(appendSQL, args...)
	b.Queue(`UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1`, msg.ID, body, at)
	var committedUS int64
	if err := p.Commit(ctx, &b, "edit message", &committedUS); err != nil {
		return chat.Message{}, err
	}
	ev.CommittedAt = time.UnixMicro(committedUS)
	db.ann.announce(ev)
	return msg, nil
}

// eraseSQL rewrites every logged event that carries message $2's text (the
// message event and its message.edited events) to carry the tombstone $3
// instead, so no replay can show the text again. A message.edited event is
// rewritten to exactly what chat.MessageEdited encodes to.
const eraseSQL = `UPDATE room_events SET data = CASE type
		WHEN 'message' THEN $3::text
		ELSE '{"room_id":"' || room_id || '","seq":' || seq || ',"message":' || $3::text || '}'
	END
	WHERE room_id = $1 AND message_id = $2 AND type IN ('message', 'message.edited')`

// DeleteMessage deletes a message (the author's own, or any for the room's
// owner): the current state becomes a tombstone without text or reactions,
// every logged event that carried the text is rewritten to the tombstone,
// and message.deleted is recorded. Two round trips, like a post.
func (db *DB) DeleteMessage(ctx context.Context, userID, roomID, messageID string) error {
	if !validID(messageID) {
		if !validID(roomID) {
			return roomNotFound()
		}
		messageID = nilID
	}
	p, msg, err := db.openMessagePipe(ctx, userID, roomID, messageID, chat.NeedAuthorOrOwner)
	if err != nil {
		return err
	}
	at := now()
	tomb := msg
	tomb.Body, tomb.DeletedAt, tomb.Reactions = "", &at, []chat.Reaction{}
	tombJSON, err := json.Marshal(tomb)
	if err != nil {
		p.Refuse(ctx)
		return fmt.Errorf("encode tombstone: %w", err)
	}
	room := p.Room
	ev, args, err := nextEvent(&room, chat.EventMessageDeleted, eventKeys{subjectID: userID, messageID: msg.ID}, at, func(seq int64) any {
		return chat.MessageDeleted{RoomID: room.ID, Seq: seq, MessageID: msg.ID, MessageSeq: msg.Seq}
	})
	if err != nil {
		p.Refuse(ctx)
		return err
	}
	// The event goes first, so Commit reads its clock; eraseSQL leaves it
	// alone (it rewrites message and message.edited events only).
	var b pgx.Batch
	b.Queue(appendSQL, args...)
	b.Queue(`UPDATE messages SET body = '', deleted_at = $2 WHERE id = $1`, msg.ID, at)
	b.Queue(`DELETE FROM reactions WHERE message_id = $1`, msg.ID)
	b.Queue(eraseSQL, room.ID, msg.ID, string(tombJSON))
	var committedUS int64
	if err := p.Commit(ctx, &b, "delete message", &committedUS); err != nil {
		return err
	}
	ev.CommittedAt = time.UnixMicro(committedUS)
	db.ann.announce(ev)
	return nil
}

// nilID is a well-formed id that names nothing, standing in for a
// malformed one so the room is checked before the message.
const nilID = "00000000-0000-0000-0000-000000000000"
