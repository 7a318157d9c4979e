package stream

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

// feedFixture is a database with a listener feeding a hub, as a replica
// runs them.
type feedFixture struct {
	db    *postgres.DB
	hub   *Hub
	codec *chat.CursorCodec
}

func MustFeedFixture(tb testing.TB) *feedFixture {
	tb.Helper()
	url := pgtest.NewDB(tb)
	pool, err := postgres.OpenPool(tb.Context(), url, 8, 0)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	db := postgres.NewDB(pool)
	h := NewHub(db, testLogger(tb), 0)
	l := postgres.NewListener(url, h, testLogger(tb))
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, ready)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		h.Close()
	})
	select {
	case <-ready:
	case <-time.After(waitTimeout):
		tb.Fatal("listener did not start")
	}
	return &feedFixture{db: db, hub: h, codec: chat.NewCursorCodec([]byte("a secret of at least thirty-two bytes"), "test")}
}

// emitted is one frame a feed wrote.
type emitted struct {
	ev     chat.Event
	cursor string
}

// testFeed is a feed and what it emitted.
type testFeed struct {
	*UserFeed
	out []emitted
}

func (fx *feedFixture) MustFeed(tb testing.TB, userID string, cursor string) (*testFeed, string) {
	tb.Helper()
	sub, err := fx.hub.SubscribeUser(userID)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sub.Close)
	tf := &testFeed{}
	tf.UserFeed = NewUserFeed(userID, sub, fx.db, fx.db, fx.codec, func(ev *chat.Event, cursor string) error {
		if len(cursor) > chat.MaxCursorLen {
			tb.Errorf("cursor of %d characters (raw %d, deferred %d, horizon %d)", len(cursor), tf.raw, tf.deferred, tf.horizon)
		}
		tf.out = append(tf.out, emitted{*ev, cursor})
		return nil
	})
	var cur *chat.UserCursor
	if cursor != "" {
		c, err := fx.codec.Decode("query.after", cursor)
		if err != nil {
			tb.Fatalf("decode cursor: %v", err)
		}
		cur = &c
	}
	ready, err := tf.Start(tb.Context(), cur)
	if err != nil {
		tb.Fatalf("start feed: %v", err)
	}
	return tf, ready
}

// pump handles the feed's events until it has emitted n frames in all,
// rebasing when due.
func (tf *testFeed) pump(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(waitTimeout)
	for len(tf.out) < n {
		due, wait := tf.RebaseDue(time.Now())
		if due {
			if err := tf.Rebase(tb.Context()); err != nil {
				tb.Fatalf("rebase: %v", err)
			}
			continue
		}
		if ev, ok := tf.Next(); ok {
			if err := tf.Handle(tb.Context(), ev); err != nil {
				tb.Fatalf("handle: %v", err)
			}
			continue
		}
		select {
		case <-tf.Ready():
		case <-time.After(wait):
		case <-deadline:
			tb.Fatalf("emitted %d frames, want %d", len(tf.out), n)
		}
	}
}

// byRoom is what a list of frames holds per room, as seqs in order.
func byRoom(out []emitted) map[string][]int64 {
	m := map[string][]int64{}
	for _, e := range out {
		m[e.ev.RoomID] = append(m[e.ev.RoomID], e.ev.Seq)
	}
	return m
}

// owed is what userID is owed of each room after the given positions: the
// logged events inside their membership periods, from the log itself.
func (fx *feedFixture) owed(tb testing.TB, userID string, from map[string]int64, rooms []string) map[string][]int64 {
	tb.Helper()
	m := map[string][]int64{}
	for _, id := range rooms {
		member := false
		for _, ev := range MustEvents(tb, fx.db, id)[1:] {
			joins := ev.Type == chat.EventMemberJoined && ev.SubjectID == userID
			if joins {
				member = true
			}
			if member && ev.Seq > from[id] {
				m[id] = append(m[id], ev.Seq)
			}
			if ev.Type == chat.EventRoomDeleted || (ev.Type == chat.EventMemberLeft && ev.SubjectID == userID) {
				member = false
			}
		}
	}
	return m
}

func count(m map[string][]int64) int {
	n := 0
	for _, s := range m {
		n += len(s)
	}
	return n
}

func (fx *feedFixture) lastSeqs(tb testing.TB, rooms []string) map[string]int64 {
	tb.Helper()
	m := map[string]int64{}
	for _, id := range rooms {
		seq, err := fx.db.LastSeq(tb.Context(), id)
		if err != nil {
			tb.Fatal(err)
		}
		m[id] = seq
	}
	return m
}

// assertResumes checks every cursor the feed emitted: a feed started from
// it replays exactly what came after it, per room.
func (fx *feedFixture) assertResumes(t *testing.T, userID string, out []emitted) {
	t.Helper()
	for k := range out {
		replay, _ := fx.MustFeed(t, userID, out[k].cursor)
		want := byRoom(out[k+1:])

		if got := byRoom(replay.out); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("resuming after frame %d (room %s seq %d) replayed %v, want %v", k, out[k].ev.RoomID, out[k].ev.Seq, got, want)
		}
	}
}

func TestUserFeedFollowsMemberships(t *testing.T) {
	fx := MustFeedFixture(t)
	ctx := t.Context()
	alice, bob := MustUser(t, fx.db), MustUser(t, fx.db)
	var rooms []string
	for range 3 {
		id, _ := MustRoom(t, fx.db, bob, 0)
		rooms = append(rooms, id)
	}
	for _, id := range rooms[:2] {
		if _, err := fx.db.JoinRoom(ctx, alice, id); err != nil {
			t.Fatal(err)
		}
	}
	start := fx.lastSeqs(t, rooms)
	feed, ready := fx.MustFeed(t, alice, "")
	if len(feed.out) != 0 {
		t.Fatalf("a live start emitted %d frames", len(feed.out))
	}
	if _, err := fx.codec.Decode("query.after", ready); err != nil {
		t.Fatalf("ready cursor: %v", err)
	}
	MustPost(t, fx.db, bob, rooms[0], 2)
	MustPost(t, fx.db, bob, rooms[1], 1)
	MustPost(t, fx.db, bob, rooms[2], 2) // not alice's
	if _, err := fx.db.JoinRoom(ctx, alice, rooms[2]); err != nil {
		t.Fatal(err)
	}
	MustPost(t, fx.db, bob, rooms[2], 2)
	if err := fx.db.LeaveRoom(ctx, alice, rooms[1]); err != nil {
		t.Fatal(err)
	}
	MustPost(t, fx.db, bob, rooms[1], 2) // not alice's any more
	MustPost(t, fx.db, bob, rooms[0], 1)
	if err := fx.db.LeaveRoom(ctx, alice, rooms[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.db.JoinRoom(ctx, alice, rooms[2]); err != nil {
		t.Fatal(err)
	}
	MustPost(t, fx.db, bob, rooms[2], 1)
	if err := fx.db.DeleteRoom(ctx, bob, rooms[0]); err != nil {
		t.Fatal(err)
	}

	want := fx.owed(t, alice, start, rooms)
	feed.pump(t, count(want))
	if got := byRoom(feed.out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
	fx.assertResumes(t, alice, feed.out)
	// From its very start: the ready cursor replays everything.
	replay, _ := fx.MustFeed(t, alice, ready)
	if got := byRoom(replay.out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("resuming from ready replayed %v, want %v", got, want)
	}
}

// TestUserFeedFullCursor: while an open transaction holds the horizon
// back, events in 200 rooms would need a cursor listing every room; the
// feed holds back rooms that do not fit, keeps every id within 512
// characters, and delivers them all once the horizon moves on.
func TestUserFeedFullCursor(t *testing.T) {
	fx := MustFeedFixture(t)
	ctx := t.Context()
	alice := MustUser(t, fx.db)
	rooms := fx.mustRooms(t, alice, 200)
	hold, err := fx.db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx) //nolint:errcheck
	if _, err := hold.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	start := fx.lastSeqs(t, rooms)
	feed, _ := fx.MustFeed(t, alice, "")
	for _, id := range rooms {
		MustPost(t, fx.db, alice, id, 1)
	}
	want := fx.owed(t, alice, start, rooms)
	// Handle every post while the horizon is held back: the rooms that do
	// not fit in the cursor are held back, most of them.
	deadline := time.After(waitTimeout)
	for handled := 0; handled < len(rooms); {
		if ev, ok := feed.Next(); ok {
			if err := feed.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
			handled++
			continue
		}
		select {
		case <-feed.Ready():
		case <-deadline:
			t.Fatalf("handled %d of %d posts", handled, len(rooms))
		}
	}
	if feed.deferred < len(rooms)/10 {
		t.Fatalf("%d rooms held back, want at least %d", feed.deferred, len(rooms)/10)
	}
	t.Logf("%d frames, %d rooms held back", len(feed.out), feed.deferred)
	if len(feed.out) >= count(want) {
		t.Fatalf("emitted all %d frames with the horizon held back", len(feed.out))
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The horizon jumps past every held room at once.
	if err := feed.Rebase(ctx); err != nil {
		t.Fatal(err)
	}
	fx.assertDelivers(t, feed, alice, want)
	replay, _ := fx.MustFeed(t, alice, feed.out[len(feed.out)-1].cursor)
	if len(replay.out) != 0 {
		t.Fatalf("resuming from the last cursor replayed %d frames", len(replay.out))
	}
}

// TestUserFeedRebaseLagging: a rebase right after posts in 200 rooms, before
// the hub has handed the feed any of them, finds every room behind its base
// under the new horizon; the cursor cannot list them all, so the feed lets
// through only as many as it can list, keeps every id within 512
// characters, and still delivers every event once, in order.
func TestUserFeedRebaseLagging(t *testing.T) {
	fx := MustFeedFixture(t)
	ctx := t.Context()
	alice := MustUser(t, fx.db)
	rooms := fx.mustRooms(t, alice, 200)
	start := fx.lastSeqs(t, rooms)
	feed, _ := fx.MustFeed(t, alice, "")
	for _, id := range rooms {
		MustPost(t, fx.db, alice, id, 1)
	}
	want := fx.owed(t, alice, start, rooms)
	if err := feed.Rebase(ctx); err != nil {
		t.Fatal(err)
	}
	if !chat.CursorFits(feed.raw) {
		t.Fatalf("cursor of %d bytes after the rebase", feed.raw)
	}
	fx.assertDelivers(t, feed, alice, want)
}

// mustRooms creates n rooms owned by userID.
func (fx *feedFixture) mustRooms(t *testing.T, userID string, n int) []string {
	t.Helper()
	rooms := make([]string, 0, n)
	for range n {
		id, _ := MustRoom(t, fx.db, userID, 0)
		rooms = append(rooms, id)
	}
	return rooms
}

// assertDelivers pumps feed until it has emitted want, checks it emitted
// exactly that, and that its last cursors resume where they say.
func (fx *feedFixture) assertDelivers(t *testing.T, feed *testFeed, userID string, want map[string][]int64) {
	t.Helper()
	feed.pump(t, count(want))
	if got := byRoom(feed.out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
	longest := slices.MaxFunc(feed.out, func(a, b emitted) int { return len(a.cursor) - len(b.cursor) })
	t.Logf("%d frames, longest cursor %d characters", len(feed.out), len(longest.cursor))
	fx.assertResumes(t, userID, feed.out[len(feed.out)-10:])
}
