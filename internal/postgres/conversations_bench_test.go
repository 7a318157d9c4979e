package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parley-chat/parley/internal/chat"
)

// MustSeedMessages appends n messages by authorID to a room with SQL
// (generate_series), as posts would have stored them: the message events,
// the messages' current state, the room's seq and message count.
func (f *eventFixture) MustSeedMessages(tb testing.TB, roomID, authorID string, n int) {
	tb.Helper()
	ctx := tb.Context()
	tx, err := f.db.Pool().Begin(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after commit a no-op
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO messages (id, room_id, seq, ordinal, author_id, body, body_hash, created_at)
		SELECT gen_random_uuid(), r.id, r.last_seq + i, r.message_count + i, $3, 'seeded message number ' || i,
			sha256(convert_to('seeded message number ' || i, 'UTF8')), now()
		FROM rooms r, generate_series(1, $2::int) i WHERE r.id = $1`, []any{roomID, n, authorID}},
		{`INSERT INTO room_events (room_id, seq, type, data, subject_id, created_at, message_id, hx)
		SELECT m.room_id, m.seq, 'message', json_build_object('id', m.id, 'room_id', m.room_id, 'seq', m.seq,
			'author', json_build_object('id', u.id, 'username', u.username, 'display_name', u.display_name),
			'body', m.body, 'created_at', m.created_at, 'reactions', '[]'::json)::text, m.author_id, m.created_at, m.id,
			pg_current_xact_id()
		FROM messages m JOIN users u ON u.id = m.author_id
		WHERE m.room_id = $1 AND m.seq > (SELECT last_seq FROM rooms WHERE id = $1)`, []any{roomID}},
		{`UPDATE rooms SET last_seq = last_seq + $2::int, message_count = message_count + $2::int,
			last_hx = greatest(last_hx, pg_current_xact_id()) WHERE id = $1`, []any{roomID, n}},
	} {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			tb.Fatalf("seed messages: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		tb.Fatal(err)
	}
	// As autovacuum would, so plans see the tables' real sizes.
	if _, err := f.db.Pool().Exec(ctx, `ANALYZE messages, room_events`); err != nil {
		tb.Fatal(err)
	}
}

// MustMessageIDs returns the ids of a room's messages in seq order.
func (f *eventFixture) MustMessageIDs(tb testing.TB, roomID string) []string {
	tb.Helper()
	rows, err := f.db.Pool().Query(tb.Context(), `SELECT id::text FROM messages WHERE room_id = $1 ORDER BY seq`, roomID)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// BenchmarkConversationWrites measures the writes that change a posted
// message. Each takes two round trips, like a post (BenchmarkPostMessage):
// one for BEGIN, the room lock and the lookups, one for the event, the
// writes and COMMIT; the event is announced after the commit, in a batch.
func BenchmarkConversationWrites(b *testing.B) {
	b.Run("Edit", func(b *testing.B) {
		f := MustEventFixture(b, 4)
		roomID := f.MustRoom(b)
		msg, _, err := f.db.PostMessage(b.Context(), f.user, roomID, chat.MessagePost{Body: "a message to edit"})
		if err != nil {
			b.Fatal(err)
		}
		bodies := []string{"edited once: a message of ordinary length", "edited twice: a message of ordinary length"}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if _, err := f.db.EditMessage(b.Context(), f.user, roomID, msg.ID, bodies[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Delete", func(b *testing.B) {
		f := MustEventFixture(b, 4)
		roomID := f.MustRoom(b)
		f.MustSeedMessages(b, roomID, f.user, 20000)
		ids := f.MustMessageIDs(b, roomID)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if i == len(ids) {
				b.Fatalf("more than %d deletes: seed more messages", len(ids))
			}
			if err := f.db.DeleteMessage(b.Context(), f.user, roomID, ids[i]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("React", func(b *testing.B) {
		f := MustEventFixture(b, 4)
		roomID := f.MustRoom(b)
		msg, _, err := f.db.PostMessage(b.Context(), f.user, roomID, chat.MessagePost{Body: "react to me"})
		if err != nil {
			b.Fatal(err)
		}
		// Add and take back in turn, so every call records an event.
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if i%2 == 1 {
				_, err = f.db.AddReaction(b.Context(), f.user, roomID, msg.ID, "👍")
			} else {
				err = f.db.RemoveReaction(b.Context(), f.user, roomID, msg.ID, "👍")
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarkRead", func(b *testing.B) {
		f := MustEventFixture(b, 4)
		roomID := f.MustRoom(b)
		f.MustSeedMessages(b, roomID, f.user, 10000)
		seq := int64(1)
		b.ReportAllocs()
		for b.Loop() {
			seq++
			if seq > 10001 {
				b.Fatal("more marks than messages")
			}
			if _, err := f.db.MarkRead(b.Context(), f.user, roomID, seq); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// noUnreadSQL is the joined room list as it was before read state: the
// baseline the list with unread counts is held to (within 2x).
const noUnreadSQL = `SELECT r.id, r.name, r.topic, r.visibility, r.owner_id, r.member_count, r.last_seq, r.created_at
	FROM rooms r JOIN room_members m ON m.room_id = r.id AND m.user_id = $4
	WHERE r.deleted_at IS NULL AND (r.created_at, r.id) < ($1, $2)
	ORDER BY r.created_at DESC, r.id DESC LIMIT $3`

// BenchmarkJoinedRooms lists the joined rooms of a user in 100 rooms of
// 10,000 messages each, with read markers anywhere (uniformly random): with
// the unread counts (FindRooms) and without (the list's query before read
// state, scanned alike). The unread count is ordinal arithmetic plus a
// count of the deleted messages after the marker, so deletions cost: 0.1%
// of the messages are deleted first, then 1%. The tables are vacuumed after
// seeding, as autovacuum would have them. This machine's load drifts, so
// each iteration lists both ways, in turns, and the benchmark reports each
// one's time and their ratio. (The list reads neither room_events nor
// reactions, so only messages are seeded.)
func BenchmarkJoinedRooms(b *testing.B) {
	const rooms, perRoom = 100, 10000
	f := MustEventFixture(b, 4)
	ctx := b.Context()
	// The messages are someone else's: the user's own are never unread.
	author := uuid.NewString()
	if err := f.db.CreateUser(ctx, chat.User{ID: author, Username: "author" + author[:8], DisplayName: "Author", CreatedAt: time.Now().UTC()}, "hash"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range rooms {
		f.MustRoom(b)
	}
	pool := f.db.Pool()
	mustExec := func(sql string, args ...any) {
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	mustExec(`INSERT INTO messages (id, room_id, seq, ordinal, author_id, body, body_hash, created_at)
		SELECT gen_random_uuid(), r.id, r.last_seq + i, r.message_count + i, $1, 'seeded message number ' || i,
			sha256(convert_to('seeded message number ' || i, 'UTF8')), now()
		FROM rooms r, generate_series(1, $2::int) i`, author, perRoom)
	mustExec(`UPDATE rooms SET last_seq = last_seq + $1::int, message_count = message_count + $1::int`, perRoom)
	mustExec(`UPDATE room_members m SET last_read_seq = s.seq, last_read_ordinal = COALESCE((SELECT ordinal FROM messages
			WHERE room_id = m.room_id AND seq <= s.seq ORDER BY seq DESC LIMIT 1), 0)
		FROM (SELECT id, 1 + floor(random() * last_seq)::bigint AS seq FROM rooms) s WHERE s.id = m.room_id`)
	b.Logf("seeded %d rooms x %d messages in %v", rooms, perRoom, time.Since(start).Round(time.Millisecond))
	filter := chat.RoomFilter{Scope: chat.ScopeJoined, Limit: rooms}

	// checkCounts compares every unread count with a count of the rows, or
	// the comparison would mean nothing.
	checkCounts := func() {
		got, _, err := f.db.FindRooms(ctx, f.user, filter)
		if err != nil || len(got) != rooms {
			b.Fatalf("find rooms: %d rooms, %v", len(got), err)
		}
		for _, r := range got {
			var want int64
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE room_id = $1 AND seq > $2 AND deleted_at IS NULL
				AND author_id <> $3`, r.ID, *r.LastReadSeq, f.user).Scan(&want); err != nil {
				b.Fatal(err)
			}
			if *r.UnreadCount != want {
				b.Fatalf("room %s: unread %d, counted %d", r.ID, *r.UnreadCount, want)
			}
		}
	}
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	last := "ffffffff-ffff-ffff-ffff-ffffffffffff"
	without := func() {
		rows, err := pool.Query(ctx, noUnreadSQL, far, last, rooms+1, f.user)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var r chat.Room
			if err := rows.Scan(&r.ID, &r.Name, &r.Topic, &r.Visibility, &r.OwnerID, &r.MemberCount, &r.LastSeq, &r.CreatedAt); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if rows.Err() != nil || n != rooms {
			b.Fatalf("%d rooms, %v", n, rows.Err())
		}
	}
	with := func() {
		if rs, _, err := f.db.FindRooms(ctx, f.user, filter); err != nil || len(rs) != rooms {
			b.Fatalf("%d rooms, %v", len(rs), err)
		}
	}
	both := func(b *testing.B) {
		var tWith, tWithout time.Duration
		i := 0
		for b.Loop() {
			i++
			first, second, tFirst, tSecond := with, without, &tWith, &tWithout
			if i%2 == 0 {
				first, second, tFirst, tSecond = without, with, &tWithout, &tWith
			}
			t0 := time.Now()
			first()
			t1 := time.Now()
			second()
			*tFirst += t1.Sub(t0)
			*tSecond += time.Since(t1)
		}
		b.ReportMetric(float64(tWith.Microseconds())/float64(i), "us/with-unread")
		b.ReportMetric(float64(tWithout.Microseconds())/float64(i), "us/without")
		b.ReportMetric(float64(tWith)/float64(tWithout), "ratio")
	}
	for _, step := range []struct {
		name string
		sql  string
	}{
		{"deleted=0.1%", `UPDATE messages SET body = '', deleted_at = now() WHERE random() < 0.001`},
		{"deleted=1%", `UPDATE messages SET body = '', deleted_at = now() WHERE deleted_at IS NULL AND random() < 0.009`},
	} {
		mustExec(step.sql)
		mustExec(`VACUUM ANALYZE messages`)
		mustExec(`VACUUM ANALYZE room_members`)
		mustExec(`VACUUM ANALYZE rooms`)
		checkCounts()
		b.Run(step.name, both)
	}
}
