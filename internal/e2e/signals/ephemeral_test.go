package signals

import (
	"net/http"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// live is the contract's bound on ephemeral delivery, every replica
// included, with a little room for a loaded test machine.
const live = 1500 * time.Millisecond

// typingWindow is more than a replica holds back a user's next typing in
// a room (chat.TypingInterval and a slack for flush jitter).
const typingWindow = chat.TypingInterval + 300*time.Millisecond

func TestTypingAndReadReceipts(t *testing.T) {
	c := e2e.NewCluster(t)
	r1, r2 := c.MustStart(t), c.MustStart(t)
	ana := e2e.MustRegister(t, r1.URL, "ana")
	bob := e2e.MustRegister(t, r1.URL, "bob")
	cal := e2e.MustRegister(t, r1.URL, "cal") // not a member
	room := ana.MustCreateRoom(t, "general", chat.Public)
	other := ana.MustCreateRoom(t, "other", chat.Public)
	bob.As(r2.URL).MustJoin(t, room.ID)

	// Ana streams on r1, Bob on r2: every signal crosses replicas.
	anaRoom := ana.OpenStream(t, room.ID, "", nil)
	anaUser := ana.OpenUserStream(t, "", nil)
	bobRoom := bob.As(r2.URL).OpenStream(t, room.ID, "", nil)
	bobUser := bob.As(r2.URL).OpenUserStream(t, "", nil)
	for _, s := range []*e2e.Stream{anaRoom, anaUser, bobRoom, bobUser} {
		mustUntilReady(t, s)
	}

	t.Run("TypingOnBothStreamKinds", func(t *testing.T) {
		start := time.Now()
		mustTyping(t, ana, room.ID)
		for name, s := range map[string]*e2e.Stream{"room": bobRoom, "user": bobUser} {
			f := mustNextOf(t, s, "typing", wait)
			if got := decode[chat.Typing](t, f); got != (chat.Typing{RoomID: room.ID, UserID: ana.Session.User.ID}) {
				t.Fatalf("%s stream: typing %+v", name, got)
			}
			if f.RawID != "" {
				t.Fatalf("%s stream: typing came with (or after) id %q", name, f.RawID)
			}
		}
		if d := time.Since(start); d > live {
			t.Fatalf("typing took %s to reach the other replica's streams", d)
		}
	})

	t.Run("ReadReceiptOnBothStreamKinds", func(t *testing.T) {
		msg := ana.MustPost(t, room.ID, "hello")
		mustNextOf(t, bobRoom, "message", wait)
		start := time.Now()
		rs := mustMarkRead(t, bob.As(r2.URL), room.ID, msg.Seq)
		want := chat.MemberRead{RoomID: room.ID, UserID: bob.Session.User.ID, LastReadSeq: rs.LastReadSeq}
		if rs.LastReadSeq != msg.Seq {
			t.Fatalf("read state %+v, want marker at %d", rs, msg.Seq)
		}
		for name, s := range map[string]*e2e.Stream{"room": anaRoom, "user": anaUser} {
			f := mustNextOf(t, s, "member.read", wait)
			if got := decode[chat.MemberRead](t, f); got != want {
				t.Fatalf("%s stream: member.read %+v, want %+v", name, got, want)
			}
		}
		if d := time.Since(start); d > live {
			t.Fatalf("member.read took %s to reach the other replica's streams", d)
		}
		// A marker that does not move (the same seq again) says nothing.
		mustMarkRead(t, bob, room.ID, msg.Seq)
		if fs := framesFor(anaRoom, live, "member.read"); len(fs) != 0 {
			t.Fatalf("a marker that did not move sent %+v", fs)
		}
	})

	t.Run("PostingSendsNoReadReceipt", func(t *testing.T) {
		// Posting moves Bob's own marker, silently.
		bob.As(r2.URL).MustPost(t, room.ID, "from bob")
		mustNextOf(t, anaRoom, "message", wait)
		if fs := framesFor(anaRoom, live, "member.read"); len(fs) != 0 {
			t.Fatalf("posting sent a read receipt: %+v", fs)
		}
	})

	t.Run("NotToSelf", func(t *testing.T) {
		// Ana typed and Bob read in the cases above: neither heard of
		// their own, though both heard the other's.
		mustTyping(t, bob.As(r2.URL), room.ID)
		mustNextOf(t, anaRoom, "typing", wait)
		for name, s := range map[string]*e2e.Stream{"ana room": anaRoom, "ana user": anaUser, "bob room": bobRoom, "bob user": bobUser} {
			for _, f := range framesFor(s, 300*time.Millisecond, "typing", "member.read") {
				about := decode[chat.Typing](t, f) // user_id, as in member.read
				self := ana.Session.User.ID
				if name[:3] == "bob" {
					self = bob.Session.User.ID
				}
				if about.UserID == self {
					t.Fatalf("%s stream got its own %s: %s", name, f.Type, f.Data)
				}
			}
		}
	})

	t.Run("OnlyThatRoomsMembers", func(t *testing.T) {
		// Ana types in a room Bob is not in: his streams hear nothing.
		mustTyping(t, ana, other.ID)
		for name, s := range map[string]*e2e.Stream{"room": bobRoom, "user": bobUser} {
			if fs := framesFor(s, live, "typing"); len(fs) != 0 {
				t.Fatalf("%s stream: typing from a room Bob is not in: %+v", name, fs)
			}
		}
	})

	t.Run("ErrNotMember", func(t *testing.T) {
		resp := cal.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/typing", nil)
		resp.MustProblem(t, http.StatusForbidden)
		private := ana.MustCreateRoom(t, "private", chat.Private)
		resp = cal.As(r2.URL).Do(t, http.MethodPost, "/v1/rooms/"+private.ID+"/typing", nil)
		resp.MustProblem(t, http.StatusNotFound)
		resp = cal.Do(t, http.MethodPost, "/v1/rooms/not-a-room/typing", nil)
		resp.MustProblem(t, http.StatusNotFound)
		anon := *cal
		anon.Token = ""
		anon.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/typing", nil).MustProblem(t, http.StatusUnauthorized)
	})

	t.Run("NoIDOnTheWire", func(t *testing.T) {
		// After a durable event, so a frame without id: is told apart
		// from one that repeats the last id.
		for _, roomID := range []string{room.ID, ""} {
			query := "after=0"
			if roomID == "" {
				query = "" // the user stream's cursors are opaque: start live
			}
			frames := openWire(t, bob.As(r2.URL), roomID, query)
			mustWireEvent(t, frames, "ready")
			ana.MustPost(t, room.ID, "durable")
			msg := mustWireEvent(t, frames, "message")
			if _, ok := msg.field("id"); !ok {
				t.Fatalf("a message frame without id: %q", msg.lines)
			}
			time.Sleep(typingWindow) // the last typing's window
			mustTyping(t, ana, room.ID)
			f := mustWireEvent(t, frames, "typing")
			if id, ok := f.field("id"); ok {
				t.Fatalf("typing frame with id: %q", id)
			}
		}
	})

	t.Run("NotReplayed", func(t *testing.T) {
		// A live user stream hears a message and a typing; resumed from
		// its ready cursor it replays the message only. The room stream
		// replays its whole log, with no ephemeral event in it.
		u := bob.As(r1.URL).OpenUserStream(t, "", nil)
		cursor := decode[chat.UserReady](t, mustNextOf(t, u, "ready", wait)).Cursor
		time.Sleep(typingWindow)
		ana.MustPost(t, room.ID, "before the resume")
		mustTyping(t, ana, room.ID)
		mustNextOf(t, u, "typing", wait)
		u.Close()
		fs := mustUntilReady(t, bob.As(r2.URL).OpenUserStream(t, "after="+cursor, nil))
		if len(fs) != 1 || fs[0].Type != "message" {
			t.Fatalf("user stream replayed %+v, want the one message", fs)
		}
		fs = mustUntilReady(t, bob.As(r1.URL).OpenStream(t, room.ID, "after=0", nil))
		if len(fs) < 5 {
			t.Fatalf("room stream replayed %d events, want its whole log", len(fs))
		}
	})
}

func TestTypingCoalescing(t *testing.T) {
	c := e2e.NewCluster(t)
	r1, r2 := c.MustStart(t), c.MustStart(t)
	ana := e2e.MustRegister(t, r1.URL, "ana")
	bob := e2e.MustRegister(t, r1.URL, "bob")
	room := ana.MustCreateRoom(t, "general", chat.Public)
	bob.MustJoin(t, room.ID)
	streams := map[string]*e2e.Stream{
		"room r1": bob.OpenStream(t, room.ID, "", nil),
		"room r2": bob.As(r2.URL).OpenStream(t, room.ID, "", nil),
		"user r2": bob.As(r2.URL).OpenUserStream(t, "", nil),
	}
	for _, s := range streams {
		mustUntilReady(t, s)
	}
	// A keystroke every 25 ms for 1.5 s, spread over both replicas: one
	// typing event in all, on every stream.
	start := time.Now()
	n := 0
	for time.Since(start) < 1500*time.Millisecond {
		mustTyping(t, ana.As([]string{r1.URL, r2.URL}[n%2]), room.ID)
		n++
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(chat.TypingInterval - time.Since(start) - 100*time.Millisecond) // until just before the next is due
	for name, s := range streams {
		if fs := framesFor(s, 0, "typing"); len(fs) != 1 {
			t.Fatalf("%s: %d typing events for %d keystrokes within 2 s, want 1", name, len(fs), n)
		}
	}
	// After the interval (and the replicas' slack for flush jitter), the
	// next keystroke gets through again.
	for time.Since(start) < typingWindow {
		time.Sleep(20 * time.Millisecond)
	}
	mustTyping(t, ana.As(r2.URL), room.ID)
	for name, s := range streams {
		if fs := framesFor(s, live, "typing"); len(fs) != 1 {
			t.Fatalf("%s: %d typing events after the interval, want 1", name, len(fs))
		}
	}
	// Typing is not a write: it used none of the post limit.
	m := r1.Metrics(t)
	if v := m[`parley_signals_dropped_total{reason="coalesced"}`]; v < 1 {
		t.Fatalf("no typing coalesced on r1 after %d keystrokes: %v", n, v)
	}
	if v := m["parley_signal_transactions_total"]; v < 1 {
		t.Fatalf("parley_signal_transactions_total = %v", v)
	}
	if _, ok := m["parley_notification_queue_usage"]; !ok {
		t.Fatal("no parley_notification_queue_usage metric")
	}
	t.Logf("%d keystrokes, r1 signal transactions %v", n, m["parley_signal_transactions_total"])
}
