package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

// listenWait bounds every wait for the listener.
const listenWait = 10 * time.Second

// eventFixture is a fresh database with one user, for the event log's
// tests and benchmarks.
type eventFixture struct {
	url  string
	db   *postgres.DB
	user string
}

// MustEventFixture creates a migrated database, a pool of maxConns on it
// and a user.
func MustEventFixture(tb testing.TB, maxConns int32, opts ...postgres.Option) *eventFixture {
	tb.Helper()
	url := pgtest.NewDB(tb)
	pool, err := postgres.OpenPool(tb.Context(), url, maxConns, 0)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	f := &eventFixture{url: url, db: postgres.NewDB(pool, opts...), user: uuid.NewString()}
	tb.Cleanup(func() { // before the pool closes
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.db.WaitAnnounced(ctx)
	})
	u := chat.User{ID: f.user, Username: "u" + strings.ReplaceAll(f.user, "-", "")[:12], DisplayName: "User", CreatedAt: time.Now().UTC()}
	if err := f.db.CreateUser(tb.Context(), u, "hash"); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return f
}

// MustRoom creates a room owned by the fixture's user.
func (f *eventFixture) MustRoom(tb testing.TB) string {
	tb.Helper()
	room, err := f.db.CreateRoom(tb.Context(), f.user, chat.RoomCreate{Name: "room", Visibility: chat.Public})
	if err != nil {
		tb.Fatalf("create room: %v", err)
	}
	return room.ID
}

// MustPost posts body to a room and returns the message's seq.
func (f *eventFixture) MustPost(tb testing.TB, roomID, body string) int64 {
	tb.Helper()
	msg, _, err := f.db.PostMessage(tb.Context(), f.user, roomID, chat.MessagePost{Body: body})
	if err != nil {
		tb.Fatalf("post message: %v", err)
	}
	return msg.Seq
}

// recordingSink is a chat.EventSink that queues what the listener hands
// it; onResync, when set, runs inside Resync.
type recordingSink struct {
	events   chan chat.Event
	onResync func()
}

func (s *recordingSink) Publish(_ context.Context, ev chat.Event) { s.events <- ev }

func (s *recordingSink) Resync(context.Context) {
	if s.onResync != nil {
		s.onResync()
	}
}

// Retry has nothing pending: the recording sink never fails a read.
func (s *recordingSink) Retry(context.Context) bool { return false }

// hookHandler is a slog.Handler that passes every message to onMessage
// (and on to the test's output), which lets a test act at a precise point
// of the listener's loop.
type hookHandler struct {
	slog.Handler
	onMessage func(msg string)
}

func (h hookHandler) Handle(ctx context.Context, r slog.Record) error {
	h.onMessage(r.Message)
	return h.Handler.Handle(ctx, r)
}

// mustRunListener runs l until the test ends (or cancel), and waits for its
// first LISTEN; stopped is closed when Run has returned.
func mustRunListener(t *testing.T, l *postgres.Listener) (cancel context.CancelFunc, stopped <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, ready)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case <-time.After(listenWait):
		t.Fatal("listener not ready")
	}
	return cancel, done
}

// receiveEvents waits for the sink's next n events.
func receiveEvents(tb testing.TB, sink *recordingSink, n int) []chat.Event {
	tb.Helper()
	timeout := time.NewTimer(listenWait)
	defer timeout.Stop()
	var evs []chat.Event
	for len(evs) < n {
		select {
		case ev := <-sink.events:
			evs = append(evs, ev)
		case <-timeout.C:
			tb.Fatalf("got %d events, want %d", len(evs), n)
		}
	}
	return evs
}

func TestListener(t *testing.T) {
	f := MustEventFixture(t, 8)

	// The listener reports its state at the two moments that matter: when
	// it has just lost its connection, and when it resyncs after
	// reconnecting. At the first it waits for the test to commit an event
	// nobody hears.
	type state struct {
		connected bool
		backend   uint32
		ready     error
	}
	var l *postgres.Listener
	snapshot := func() state { return state{l.Connected(), l.Backend(), l.Ready()} }
	down, resynced := make(chan state, 1), make(chan state, 1)
	resume := make(chan struct{})
	var resumeOnce sync.Once
	t.Cleanup(func() { resumeOnce.Do(func() { close(resume) }) })
	logger := slog.New(hookHandler{
		Handler: slog.NewTextHandler(t.Output(), nil),
		onMessage: func(msg string) {
			if msg != "listener disconnected; reconnecting" {
				return
			}
			select {
			case down <- snapshot():
			default:
			}
			select {
			case <-resume:
			case <-time.After(listenWait):
			}
		},
	})
	sink := &recordingSink{events: make(chan chat.Event, 1024), onResync: func() {
		select {
		case resynced <- snapshot():
		default:
		}
	}}
	var reconnects atomic.Int32
	l = postgres.NewListener(f.url, sink, logger, postgres.OnReconnect(func() { reconnects.Add(1) }))

	cancel, stopped := mustRunListener(t, l)
	if !l.Connected() || l.Backend() == 0 || l.Ready() != nil {
		t.Fatalf("after ready: Connected() = %v, Backend() = %d, Ready() = %v", l.Connected(), l.Backend(), l.Ready())
	}

	t.Run("CommitOrder", func(t *testing.T) {
		// Two writers per room: the room lock makes commit order seq order,
		// and the listener must hand events over in that order. One
		// message is too big for NOTIFY and comes as a reference.
		const perWriter = 15
		big := strings.Repeat("😀", chat.BodyMax) // 16,000 bytes
		rooms := []string{f.MustRoom(t), f.MustRoom(t)}
		start := time.Now()
		var wg sync.WaitGroup
		for _, roomID := range rooms {
			for w := range 2 {
				wg.Go(func() {
					for i := range perWriter {
						body := "writer " + strconv.Itoa(w) + " message " + strconv.Itoa(i)
						if w == 1 && i == perWriter/2 {
							body = big
						}
						// Not MustPost: t.Fatal cannot end the test from here.
						if _, _, err := f.db.PostMessage(t.Context(), f.user, roomID, chat.MessagePost{Body: body}); err != nil {
							t.Errorf("post message: %v", err)
							return
						}
					}
				})
			}
		}
		wg.Wait()

		last := int64(1 + 2*perWriter)
		got := receiveEvents(t, sink, len(rooms)*int(last))
		next := map[string]int64{rooms[0]: 1, rooms[1]: 1}
		for _, ev := range got {
			if ev.Seq != next[ev.RoomID] {
				t.Fatalf("room %s: got seq %d, want %d", ev.RoomID, ev.Seq, next[ev.RoomID])
			}
			next[ev.RoomID]++
			// The database runs on this machine, so its clock is ours.
			if ev.Seq > 1 && (ev.CommittedAt.Before(start.Add(-time.Second)) || ev.CommittedAt.After(time.Now().Add(time.Second))) {
				t.Errorf("seq %d: CommittedAt %v, not between the first post (%v) and now", ev.Seq, ev.CommittedAt, start)
			}
		}
		for _, roomID := range rooms {
			logged, err := f.db.ReadEvents(t.Context(), roomID, 0, int(last))
			if err != nil {
				t.Fatal(err)
			}
			refs := 0
			for _, ev := range got {
				if ev.RoomID != roomID {
					continue
				}
				want := logged[ev.Seq-1]
				if ev.Data == nil {
					refs++
					want.Data = nil
					if !bytes.Contains(logged[ev.Seq-1].Data, []byte(big)) {
						t.Errorf("seq %d came by reference but is small", ev.Seq)
					}
				}
				if ev.Type != want.Type || ev.SubjectID != want.SubjectID || !bytes.Equal(ev.Data, want.Data) {
					t.Errorf("seq %d: got %+v, want %+v", ev.Seq, ev, want)
				}
			}
			if refs != 1 {
				t.Errorf("room %s: %d events by reference, want 1", roomID, refs)
			}
		}
	})

	t.Run("LargestInlinePayload", func(t *testing.T) {
		// Postgres takes the largest payload EncodeNotification makes
		// inline, and the listener hands its data over unchanged.
		ev := chat.Event{RoomID: uuid.NewString(), Seq: 7, Type: chat.EventMessage, SubjectID: f.user, CommittedAt: time.Now()}
		ev.Data = bytes.Repeat([]byte("é"), (7900-len(postgres.EncodeNotification(ev)))/2)
		payload := postgres.EncodeNotification(ev)
		if _, inline, _ := postgres.DecodeNotification(payload); !inline || len(payload) < 7899 {
			t.Fatalf("payload of %d bytes, inline %v: want the largest inline one", len(payload), inline)
		}
		if _, err := f.db.Pool().Exec(t.Context(), "SELECT pg_notify($1, $2)", postgres.NotifyChannel, payload); err != nil {
			t.Fatalf("notify: %v", err)
		}
		got := receiveEvents(t, sink, 1)[0]
		if got.RoomID != ev.RoomID || got.Seq != ev.Seq || !bytes.Equal(got.Data, ev.Data) {
			t.Errorf("got %+v, want %+v", got, ev)
		}
	})

	t.Run("Reconnect", func(t *testing.T) {
		roomID := f.MustRoom(t)
		receiveEvents(t, sink, 1)
		select {
		case st := <-resynced:
			t.Fatalf("Resync called without a reconnect (%+v)", st)
		default:
		}
		if n := reconnects.Load(); n != 0 {
			t.Fatalf("%d reconnects counted before any drop", n)
		}
		old := l.Backend()
		var terminated bool
		if err := f.db.Pool().QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", old).Scan(&terminated); err != nil || !terminated {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v", old, terminated, err)
		}

		var st state
		select {
		case st = <-down:
		case <-time.After(listenWait):
			t.Fatal("listener did not notice its backend was terminated")
		}
		if st.connected || st.backend != 0 || st.ready == nil {
			t.Errorf("while down: Connected() = %v, Backend() = %d, Ready() = %v", st.connected, st.backend, st.ready)
		}
		// Committed while nobody listens: its notification is gone, and
		// only the sink's resync can bring the event.
		lost := f.MustPost(t, roomID, "while down")
		resumeOnce.Do(func() { close(resume) })

		select {
		case st = <-resynced:
		case <-time.After(listenWait):
			t.Fatal("listener did not resync after reconnecting")
		}
		if !st.connected || st.backend == 0 || st.backend == old || st.ready != nil {
			t.Errorf("at resync: Connected() = %v, Backend() = %d (was %d), Ready() = %v", st.connected, st.backend, old, st.ready)
		}
		if n := reconnects.Load(); n != 1 {
			t.Errorf("%d reconnects counted, want 1", n)
		}
		seq := f.MustPost(t, roomID, "after reconnect")
		if ev := receiveEvents(t, sink, 1)[0]; ev.RoomID != roomID || ev.Seq != seq {
			t.Errorf("after reconnect got seq %d, want %d (seq %d was committed while down)", ev.Seq, seq, lost)
		}
	})

	t.Run("Stop", func(t *testing.T) {
		cancel()
		select {
		case <-stopped:
		case <-time.After(listenWait):
			t.Fatal("Run did not return after its context ended")
		}
		if l.Connected() || l.Backend() != 0 || l.Ready() == nil {
			t.Errorf("after Run: Connected() = %v, Backend() = %d, Ready() = %v", l.Connected(), l.Backend(), l.Ready())
		}
	})
}

func TestNotification(t *testing.T) {
	room := uuid.NewString()
	user := uuid.NewString()
	at := time.Now().Truncate(time.Microsecond)
	ev := func(data []byte) chat.Event {
		return chat.Event{RoomID: room, Seq: 42, Type: chat.EventMessage, SubjectID: user, Data: data, CommittedAt: at}
	}
	// The header of ev(...) and the newline before the data.
	overhead := len(postgres.EncodeNotification(ev(nil)))
	const limit = 7900 // postgres.maxInlinePayload

	tests := []struct {
		name   string
		ev     chat.Event
		inline bool
	}{
		{"Inline", ev([]byte(`{"body":"hi"}`)), true},
		{"NoSubject", chat.Event{RoomID: room, Seq: 1, Type: chat.EventRoomDeleted, Data: []byte(`{"seq":1}`), CommittedAt: at}, true},
		{"EmptyData", ev([]byte{}), true},
		{"LargestInline", ev(bytes.Repeat([]byte("x"), limit-overhead)), true},
		{"SmallestReference", ev(bytes.Repeat([]byte("x"), limit-overhead+1)), false},
		{"Reference16KB", ev(bytes.Repeat([]byte("x"), 16<<10)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := postgres.EncodeNotification(tt.ev)
			if len(payload) >= 8000 {
				t.Errorf("payload is %d bytes; NOTIFY takes under 8000", len(payload))
			}
			got, inline, err := postgres.DecodeNotification(payload)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if inline != tt.inline {
				t.Errorf("inline = %v, want %v", inline, tt.inline)
			}
			want := tt.ev
			if !tt.inline {
				want.Data = nil
			}
			if got.RoomID != want.RoomID || got.Seq != want.Seq || got.Type != want.Type || got.SubjectID != want.SubjectID || !got.CommittedAt.Equal(want.CommittedAt) ||
				!bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
				t.Errorf("round trip: got %+v, want %+v", got, want)
			}
		})
	}

	t.Run("WithoutCommittedAt", func(t *testing.T) {
		// As a replica from before committed_us announces events.
		got, inline, err := postgres.DecodeNotification(room + " 3 message " + user + "\n{}")
		if err != nil || !inline || got.Seq != 3 || !got.CommittedAt.IsZero() || string(got.Data) != "{}" {
			t.Errorf("got %+v, %v, %v; want seq 3, inline, zero CommittedAt", got, inline, err)
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		for _, payload := range []string{
			"",
			room + " 1 message",
			room + " 1 message " + user + " 1764590000000000 extra",
			room + " 1 message " + user + " soon",
			room + " 1 message " + user + " -5",
			room + " x message " + user,
			room + " 0 message " + user,
			room + " -1 message " + user,
		} {
			if _, _, err := postgres.DecodeNotification(payload); err == nil {
				t.Errorf("DecodeNotification(%.60q) succeeded", payload)
			}
		}
	})
}

// TestAnnouncedAfterCommit: every durable write (not only posts) commits
// without pg_notify and is announced afterwards by the replica's announcer,
// in batch payloads, carrying the database's clock; an in-transaction
// NOTIFY would arrive as a single-event payload.
func TestAnnouncedAfterCommit(t *testing.T) {
	f := MustEventFixture(t, 4)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LISTEN "+postgres.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	owner, bob := f.user, f.MustUser(t)
	room, err := f.db.CreateRoom(ctx, owner, chat.RoomCreate{Name: "room", Visibility: chat.Public})
	if err != nil {
		t.Fatal(err)
	}
	var msgID string
	topic := "changed"
	writes := []struct {
		want  chat.EventType
		write func() error
	}{
		{chat.EventMemberJoined, func() error { return nil }}, // CreateRoom's, above
		{chat.EventMemberJoined, func() error { _, err := f.db.JoinRoom(ctx, bob, room.ID); return err }},
		{chat.EventRoomUpdated, func() error {
			_, err := f.db.UpdateRoom(ctx, owner, room.ID, chat.RoomUpdate{Topic: &topic})
			return err
		}},
		{chat.EventMessage, func() error {
			msg, _, err := f.db.PostMessage(ctx, bob, room.ID, chat.MessagePost{Body: "hello"})
			msgID = msg.ID
			return err
		}},
		{chat.EventMessageEdited, func() error { _, err := f.db.EditMessage(ctx, bob, room.ID, msgID, "hello again"); return err }},
		{chat.EventReactionAdded, func() error { _, err := f.db.AddReaction(ctx, owner, room.ID, msgID, "👍"); return err }},
		{chat.EventReactionRemoved, func() error { return f.db.RemoveReaction(ctx, owner, room.ID, msgID, "👍") }},
		{chat.EventMessageDeleted, func() error { return f.db.DeleteMessage(ctx, bob, room.ID, msgID) }},
		{chat.EventMemberLeft, func() error { return f.db.LeaveRoom(ctx, bob, room.ID) }},
		{chat.EventMemberJoined, func() error { _, err := f.db.AddMember(ctx, owner, room.ID, bob); return err }},
		{chat.EventMemberLeft, func() error { return f.db.RemoveMember(ctx, owner, room.ID, bob) }},
		{chat.EventRoomDeleted, func() error { return f.db.DeleteRoom(ctx, owner, room.ID) }},
	}
	for i, w := range writes {
		if err := w.write(); err != nil {
			t.Fatalf("write %d (%s): %v", i+1, w.want, err)
		}
	}
	got := map[int64]chat.Event{}
	for len(got) < len(writes) {
		wctx, cancel := context.WithTimeout(ctx, listenWait)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(got), len(writes), err)
		}
		if !strings.HasPrefix(n.Payload, "*") {
			t.Errorf("single-event payload %.80q: announced from inside its transaction", n.Payload)
		}
		evs, err := postgres.DecodeAnnouncement(n.Payload)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		for _, ev := range evs {
			if _, dup := got[ev.Seq]; dup {
				t.Errorf("seq %d announced twice", ev.Seq)
			}
			got[ev.Seq] = ev
		}
	}
	logged, err := f.db.ReadEvents(ctx, room.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != len(writes) {
		t.Fatalf("log holds %d events, want %d", len(logged), len(writes))
	}
	for i, w := range writes {
		ev, want := got[int64(i+1)], logged[i]
		if ev.RoomID != room.ID || ev.Type != w.want || ev.Type != want.Type || ev.SubjectID != want.SubjectID {
			t.Errorf("seq %d: announced %s (subject %q), logged %s (subject %q), want %s", i+1, ev.Type, ev.SubjectID, want.Type, want.SubjectID, w.want)
		}
		// The logged message and message.edited events carry the
		// tombstone by now; the others are as announced.
		if ev.Type != chat.EventMessage && ev.Type != chat.EventMessageEdited && !bytes.Equal(ev.Data, want.Data) {
			t.Errorf("seq %d: announced data %s, logged %s", i+1, ev.Data, want.Data)
		}
		if ev.CommittedAt.Before(start.Add(-time.Second)) || ev.CommittedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("seq %d: CommittedAt %v, not between the first write (%v) and now", i+1, ev.CommittedAt, start)
		}
	}
}

// TestListenerSweep commits events the way a replica that dies between a
// post's commit and its announcement leaves them: in the log, never
// announced. The listener's horizon sweep must hand them on within 1 s (a
// leaver's streams end within 1 s on every replica), once per room, as a
// reference to the room's newest such event; an announced post is not
// handed on twice.
func TestListenerSweep(t *testing.T) {
	f := MustEventFixture(t, 4)
	sink := &recordingSink{events: make(chan chat.Event, 1024)}
	l := postgres.NewListener(f.url, sink, slog.New(slog.NewTextHandler(t.Output(), nil)))
	mustRunListener(t, l)
	rooms := []string{f.MustRoom(t), f.MustRoom(t)}
	posted := f.MustPost(t, rooms[0], "announced")
	got := receiveEvents(t, sink, 3) // two member.joined, the post
	if last := got[2]; last.RoomID != rooms[0] || last.Seq != posted || last.Data == nil {
		t.Fatalf("announced post: got %+v", last)
	}

	// Unannounced: two events in the first room, one in the second, in one
	// transaction as a replica's group commit writes them.
	unannounced := func(roomID string, n int) string {
		return `WITH r AS (UPDATE rooms SET last_seq = last_seq + ` + strconv.Itoa(n) + `,
				last_hx = greatest(last_hx, pg_current_xact_id()) WHERE id = '` + roomID + `' RETURNING last_seq, last_hx)
			INSERT INTO room_events (room_id, seq, type, data, hx)
			SELECT '` + roomID + `', r.last_seq - g, 'room.updated', '{}', r.last_hx FROM r, generate_series(0, ` + strconv.Itoa(n-1) + `) g`
	}
	tx, err := f.db.Pool().Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{2, 1} {
		if _, err := tx.Exec(t.Context(), unannounced(rooms[i], n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	got = receiveEvents(t, sink, 2)
	if took := time.Since(committed); took > time.Second {
		t.Errorf("sweep handed the events on after %v; want within 1 s", took)
	}
	// Each reference says where the room's unheard run starts, for the
	// user streams that do not follow the room.
	type ref struct{ seq, missedFrom int64 }
	want := map[string]ref{rooms[0]: {posted + 2, posted + 1}, rooms[1]: {2, 2}}
	for _, ev := range got {
		if w := want[ev.RoomID]; w.seq != ev.Seq || w.missedFrom != ev.MissedFrom || ev.Data != nil {
			t.Errorf("got %+v; want references to %v", ev, want)
		}
		delete(want, ev.RoomID)
	}
	select {
	case ev := <-sink.events:
		t.Errorf("handed on %+v besides", ev)
	case <-time.After(time.Second):
	}
}

// TestListenerLocal: with DeliverLocally, a replica's own posts reach its
// listener's sink without their announcement (a listener on another
// database, which no NOTIFY of these posts reaches, gets them all), and
// once each when the announcement comes back too.
func TestListenerLocal(t *testing.T) {
	for _, tt := range []struct {
		name string
		// elsewhere: the listener listens on another database.
		elsewhere bool
	}{
		{"LocalOnly", true},
		{"LocalAndAnnounced", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := MustEventFixture(t, 4)
			url := f.url
			if tt.elsewhere {
				url = pgtest.NewDB(t)
			}
			sink := &recordingSink{events: make(chan chat.Event, 1024)}
			l := postgres.NewListener(url, sink, slog.New(slog.NewTextHandler(t.Output(), nil)))
			f.db.DeliverLocally(l.Local)
			mustRunListener(t, l)
			room := f.MustRoom(t)
			var want []int64
			var slowest time.Duration
			for i := range 5 {
				posted := time.Now()
				seq := f.MustPost(t, room, fmt.Sprintf("post %d", i))
				want = append(want, seq)
				for got := false; !got; {
					select {
					case ev := <-sink.events:
						if ev.RoomID != room || ev.Type != chat.EventMessage {
							continue // the room's creation, when announced
						}
						if ev.Seq != seq || ev.Data == nil {
							t.Fatalf("got %+v, want seq %d with its data", ev, seq)
						}
						got = true
						slowest = max(slowest, time.Since(posted))
					case <-time.After(listenWait):
						t.Fatalf("post %d (seq %d) not handed on", i, seq)
					}
				}
			}
			// Announcements coming back must not hand anything on twice.
			deadline := time.After(time.Second)
			for {
				select {
				case ev := <-sink.events:
					if ev.RoomID == room && ev.Type == chat.EventMessage {
						t.Errorf("seq %d handed on again", ev.Seq)
					}
					continue
				case <-deadline:
				}
				break
			}
			t.Logf("posts %v each handed on within %v of their post call", want, slowest)
		})
	}
}
