package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// reactionLookup reads whether userID reacted to messageID with key, and
// how many did.
func reactionLookup(messageID, key, userID string, mine *bool, count *int64) lookup {
	return lookup{
		sql: `SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = $1 AND key = $2 AND user_id = $3),
			(SELECT count(*) FROM reactions WHERE message_id = $1 AND key = $2)`,
		args: []any{messageID, key, userID},
		scan: func(row pgx.Row) error { return row.Scan(mine, count) },
	}
}

// AddReaction records the caller's reaction to a message and
// reaction.added with the key's new count; reacting again with the same
// key answers the count and records nothing. The room lock serializes
// reactions, so counts are exact under concurrency. Two round trips.
func (db *DB) AddReaction(ctx context.Context, userID, roomID, messageID, key string) (chat.Reaction, error) {
	return db.react(ctx, userID, roomID, messageID, key, true)
}

// RemoveReaction takes the caller's reaction back and records
// reaction.removed; without one it records nothing.
func (db *DB) RemoveReaction(ctx context.Context, userID, roomID, messageID, key string) error {
	_, err := db.react(ctx, userID, roomID, messageID, key, false)
	return err
}

func (db *DB) react(ctx context.Context, userID, roomID, messageID, key string, add bool) (chat.Reaction, error) {
	if err := chat.CheckReactionKey("path.key", key); err != nil {
		return chat.Reaction{}, err
	}
	if !validID(messageID) {
		if !validID(roomID) {
			return chat.Reaction{}, roomNotFound()
		}
		messageID = nilID
	}
	var (
		mine  bool
		count int64
	)
	p, msg, err := db.openMessagePipe(ctx, userID, roomID, messageID, chat.NeedMember,
		reactionLookup(messageID, key, userID, &mine, &count))
	if err != nil {
		return chat.Reaction{}, err
	}
	if mine == add {
		// Already as asked: answer the count, record nothing.
		p.Refuse(ctx)
		return chat.Reaction{Key: key, Count: count}, nil
	}
	at := now()
	typ := chat.EventReactionAdded
	if add {
		count++
	} else {
		count--
		typ = chat.EventReactionRemoved
	}
	room := p.Room
	ev, args, err := nextEvent(&room, typ, eventKeys{subjectID: userID, messageID: msg.ID}, at, func(seq int64) any {
		ch := chat.ReactionChange{RoomID: room.ID, Seq: seq, MessageID: msg.ID, MessageSeq: msg.Seq, Key: key, UserID: userID, Count: count}
		if add {
			return chat.ReactionAdded(ch)
		}
		return chat.ReactionRemoved(ch)
	})
	if err != nil {
		p.Refuse(ctx)
		return chat.Reaction{}, err
	}
	// The event goes first, so Commit reads its clock.
	var b pgx.Batch
	b.Queue(appendSQL, args...)
	if add {
		b.Queue(`INSERT INTO reactions (message_id, key, user_id, created_at) VALUES ($1, $2, $3, $4)`, msg.ID, key, userID, at)
	} else {
		b.Queue(`DELETE FROM reactions WHERE message_id = $1 AND key = $2 AND user_id = $3`, msg.ID, key, userID)
	}
	var committedUS int64
	if err := p.Commit(ctx, &b, "record reaction", &committedUS); err != nil {
		return chat.Reaction{}, err
	}
	ev.CommittedAt = time.UnixMicro(committedUS)
	db.ann.announce(ev)
	return chat.Reaction{Key: key, Count: count}, nil
}
