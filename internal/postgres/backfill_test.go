package postgres_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

// TestMigrateConversationsBackfill: messages posted before the
// conversations migration (00004) get their current state, ordinals and
// body hashes from the log, and members' markers start at the room's end.
func TestMigrateConversationsBackfill(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := MustPool(t, pgtest.NewEmptyDB(t))
	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	for {
		var version int64
		if err := pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version < 4 {
			break
		}
		if err := postgres.MigrateDown(ctx, pool, nil); err != nil {
			t.Fatalf("migrate down from %d: %v", version, err)
		}
	}
	// The schema of 00002, filled as the code before 00004 filled it.
	userID, roomID := uuid.NewString(), uuid.NewString()
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	author := chat.Author{ID: userID, Username: "old", DisplayName: "Old Timer"}
	mustExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(`INSERT INTO users (id, username, display_name, password_hash) VALUES ($1, 'old', 'Old Timer', 'x')`, userID)
	mustExec(`INSERT INTO rooms (id, name, visibility, owner_id, member_count, last_seq, created_at) VALUES ($1, 'old', 'public', $2, 1, 4, $3)`, roomID, userID, at)
	mustExec(`INSERT INTO room_members (room_id, user_id, role) VALUES ($1, $2, 'owner')`, roomID, userID)
	mustExec(`INSERT INTO room_events (room_id, seq, type, data, subject_id) VALUES ($1, 1, 'member.joined', '{}', $2)`, roomID, userID)
	var posted []chat.Message
	for i, seq := range []int64{2, 4} {
		m := chat.Message{ID: uuid.NewString(), RoomID: roomID, Seq: seq, Author: author, Body: fmt.Sprintf("old message %d", i),
			ClientID: fmt.Sprintf("old-%d", i), CreatedAt: at.Add(time.Duration(seq) * time.Second)}
		data := fmt.Sprintf(`{"id":%q,"room_id":%q,"seq":%d,"author":{"id":%q,"username":"old","display_name":"Old Timer"},"body":%q,"client_id":%q,"created_at":%q}`,
			m.ID, roomID, seq, userID, m.Body, m.ClientID, m.CreatedAt.Format(time.RFC3339Nano))
		mustExec(`INSERT INTO room_events (room_id, seq, type, data, subject_id, client_id) VALUES ($1, $2, 'message', $3, $4, $5)`,
			roomID, seq, data, userID, m.ClientID)
		m.Reactions = []chat.Reaction{}
		posted = append(posted, m)
	}
	mustExec(`INSERT INTO room_events (room_id, seq, type, data) VALUES ($1, 3, 'room.updated', '{}')`, roomID)

	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	db := postgres.NewDB(pool)
	msgs, _, err := db.FindMessages(ctx, userID, roomID, chat.MessageFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(msgs) != fmt.Sprint(posted) {
		t.Fatalf("history after the migration:\n%v\nwant\n%v", msgs, posted)
	}
	for i, m := range posted {
		var ordinal int64
		var hash []byte
		var messageID string
		if err := pool.QueryRow(ctx, `SELECT m.ordinal, m.body_hash, e.message_id::text FROM messages m
			JOIN room_events e ON e.room_id = m.room_id AND e.seq = m.seq WHERE m.id = $1`, m.ID).Scan(&ordinal, &hash, &messageID); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(m.Body))
		if ordinal != int64(i+1) || string(hash) != string(sum[:]) || messageID != m.ID {
			t.Fatalf("message %d: ordinal %d, hash %x, event's message_id %s", i, ordinal, hash, messageID)
		}
	}
	room, err := db.FindRoom(ctx, userID, roomID)
	if err != nil {
		t.Fatal(err)
	}
	if *room.LastReadSeq != 4 || *room.UnreadCount != 0 {
		t.Fatalf("room after the migration: %+v, want the marker at the end", room)
	}
	// A repeated client_id finds the migrated message by its hash.
	again, created, err := db.PostMessage(ctx, userID, roomID, chat.MessagePost{Body: posted[1].Body, ClientID: posted[1].ClientID})
	if err != nil || created || again.ID != posted[1].ID {
		t.Fatalf("repeat: %+v created %v, %v", again, created, err)
	}
	if _, _, err := db.PostMessage(ctx, userID, roomID, chat.MessagePost{Body: "not the same", ClientID: posted[1].ClientID}); chat.ErrorCode(err) != chat.EConflict {
		t.Fatalf("repeat with another body: %v, want a conflict", err)
	}
	// New posts continue the ordinals.
	next, _, err := db.PostMessage(ctx, userID, roomID, chat.MessagePost{Body: "new"})
	if err != nil {
		t.Fatal(err)
	}
	var ordinal int64
	if err := pool.QueryRow(ctx, `SELECT ordinal FROM messages WHERE id = $1`, next.ID).Scan(&ordinal); err != nil || ordinal != 3 {
		t.Fatalf("new post's ordinal %d, %v; want 3", ordinal, err)
	}
}
