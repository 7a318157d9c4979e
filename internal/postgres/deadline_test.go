package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

// callTimeout is the deadline of the deadline tests' database calls.
const callTimeout = 300 * time.Millisecond

// MustDeadlineFixture is an event fixture whose pool of maxConns gives
// every call timeout.
func MustDeadlineFixture(tb testing.TB, maxConns int32, timeout time.Duration) *eventFixture {
	tb.Helper()
	url := pgtest.NewDB(tb)
	pool, err := postgres.OpenPool(tb.Context(), url, maxConns, timeout)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	f := &eventFixture{url: url, db: postgres.NewDB(pool), user: uuid.NewString()}
	u := chat.User{ID: f.user, Username: "u" + strings.ReplaceAll(f.user, "-", "")[:12], DisplayName: "User", CreatedAt: time.Now().UTC()}
	if err := f.db.CreateUser(tb.Context(), u, "hash"); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return f
}

// MustLockRoom holds roomID's row lock from a session of its own, as a
// stuck transaction would, until the returned function is called.
func MustLockRoom(tb testing.TB, url, roomID string) (release func()) {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tx, err := conn.Begin(tb.Context())
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(tb.Context(), `SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE`, roomID); err != nil {
		tb.Fatalf("lock room: %v", err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = tx.Rollback(context.Background())
			_ = conn.Close(context.Background())
		}
	}
	tb.Cleanup(release)
	return release
}

// TestCallDeadlines checks that a database call that cannot get a
// connection or an answer in time fails as chat.EUnavailable (503) within
// about the deadline, that a caller who went away is not reported so, and
// that the store works again, with no gap in the log, once the database
// answers.
func TestCallDeadlines(t *testing.T) {
	t.Run("StuckLock", func(t *testing.T) {
		f := MustDeadlineFixture(t, 4, callTimeout)
		room := f.MustRoom(t)
		before := f.MustPost(t, room, "before")
		release := MustLockRoom(t, f.url, room)
		for name, call := range map[string]func(context.Context) error{
			"PostMessage": func(ctx context.Context) error {
				_, _, err := f.db.PostMessage(ctx, f.user, room, chat.MessagePost{Body: "stuck", ClientID: "c1"})
				return err
			},
			"UpdateRoom": func(ctx context.Context) error {
				name := "renamed"
				_, err := f.db.UpdateRoom(ctx, f.user, room, chat.RoomUpdate{Name: &name})
				return err
			},
		} {
			start := time.Now()
			err := call(t.Context())
			took := time.Since(start)
			if code := chat.ErrorCode(err); code != chat.EUnavailable {
				t.Fatalf("%s behind a stuck lock: %v (code %s), want %s", name, err, code, chat.EUnavailable)
			}
			if took < callTimeout || took > callTimeout+2*time.Second {
				t.Fatalf("%s took %s, want about the deadline %s", name, took, callTimeout)
			}
		}
		// Reads that take no lock still answer.
		if _, _, err := f.db.FindMessages(t.Context(), f.user, room, chat.MessageFilter{Limit: 10}); err != nil {
			t.Fatalf("history behind a stuck lock: %v", err)
		}
		release()
		msg, created, err := f.db.PostMessage(t.Context(), f.user, room, chat.MessagePost{Body: "stuck", ClientID: "c1"})
		if err != nil || !created {
			t.Fatalf("retry after the lock went: created %v, %v", created, err)
		}
		if msg.Seq != before+1 {
			t.Fatalf("retried post has seq %d, want %d (the timed-out one must leave no gap)", msg.Seq, before+1)
		}
	})

	t.Run("PoolExhausted", func(t *testing.T) {
		f := MustDeadlineFixture(t, 1, callTimeout)
		room := f.MustRoom(t)
		held, err := f.db.Pool().Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = f.db.FindRoom(t.Context(), f.user, room)
		took := time.Since(start)
		held.Release()
		if code := chat.ErrorCode(err); code != chat.EUnavailable {
			t.Fatalf("FindRoom with no connection free: %v (code %s), want %s", err, code, chat.EUnavailable)
		}
		if took > callTimeout+2*time.Second {
			t.Fatalf("FindRoom waited %s for a connection, want about %s", took, callTimeout)
		}
		if _, err := f.db.FindRoom(t.Context(), f.user, room); err != nil {
			t.Fatalf("FindRoom once a connection is free: %v", err)
		}
	})

	t.Run("CallerGone", func(t *testing.T) {
		// The pool's deadline is far off, so only the caller's cancel can
		// end the post, even on a loaded machine.
		f := MustDeadlineFixture(t, 4, time.Minute)
		room := f.MustRoom(t)
		MustLockRoom(t, f.url, room)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, _, err := f.db.PostMessage(ctx, f.user, room, chat.MessagePost{Body: "gone"})
		if err == nil || chat.ErrorCode(err) == chat.EUnavailable {
			t.Fatalf("post whose caller went away: %v, want an error that is not %s", err, chat.EUnavailable)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("post whose caller went away: %v, want context.Canceled in it", err)
		}
	})

	t.Run("CallerDeadlineFirst", func(t *testing.T) {
		// A caller's own, earlier deadline wins over the pool's.
		f := MustDeadlineFixture(t, 4, callTimeout)
		room := f.MustRoom(t)
		MustLockRoom(t, f.url, room)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := f.db.PostMessage(ctx, f.user, room, chat.MessagePost{Body: "early"})
		if took := time.Since(start); err == nil || took >= callTimeout {
			t.Fatalf("post with a 50ms deadline: %v after %s", err, took)
		}
	})
}
