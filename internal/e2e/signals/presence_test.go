package signals

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// Short presence timings, so the test need not wait the contract's 3 s
// and 30 s.
const (
	presenceGrace   = time.Second
	presenceTimeout = 2 * time.Second
)

// presenceOf reads the presence frames about userID on s for d.
func presenceOf(tb testing.TB, s *e2e.Stream, userID string, d time.Duration) []chat.Presence {
	tb.Helper()
	var out []chat.Presence
	for _, f := range framesFor(s, d, "presence") {
		if p := decode[chat.Presence](tb, f); p.UserID == userID {
			out = append(out, p)
		}
	}
	return out
}

// mustPresence waits for the next presence frame about userID on s and
// checks it says online.
func mustPresence(tb testing.TB, s *e2e.Stream, userID string, online bool, d time.Duration) time.Time {
	tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f := mustNextOf(tb, s, "presence", time.Until(deadline))
		p := decode[chat.Presence](tb, f)
		if p.UserID != userID {
			continue
		}
		if p.Online != online {
			tb.Fatalf("presence %+v, want online=%v", p, online)
		}
		if f.RawID != "" {
			tb.Fatalf("presence with (or after) id %q", f.RawID)
		}
		return time.Now()
	}
	tb.Fatalf("no presence of %s within %s", userID, d)
	return time.Time{}
}

func TestPresence(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_PRESENCE_GRACE="+presenceGrace.String(), "PARLEY_PRESENCE_TIMEOUT="+presenceTimeout.String())
	r1, r2, r3 := c.MustStart(t), c.MustStart(t), c.MustStart(t)
	ana := e2e.MustRegister(t, r1.URL, "ana")
	bob := e2e.MustRegister(t, r1.URL, "bob")
	dan := e2e.MustRegister(t, r1.URL, "dan")
	// Ana shares two rooms with Bob: her user stream still hears of him
	// once per change.
	roomA := ana.MustCreateRoom(t, "a", chat.Public)
	roomB := ana.MustCreateRoom(t, "b", chat.Public)
	bob.MustJoin(t, roomA.ID)
	bob.MustJoin(t, roomB.ID)
	dan.MustJoin(t, roomA.ID)
	bobID, danID := bob.Session.User.ID, dan.Session.User.ID

	anaUser := ana.OpenUserStream(t, "", nil)
	anaRoom := ana.As(r2.URL).OpenStream(t, roomA.ID, "", nil)
	mustUntilReady(t, anaUser)
	mustUntilReady(t, anaRoom)
	observers := map[string]*e2e.Stream{"user": anaUser, "room": anaRoom}

	t.Run("OnConnect", func(t *testing.T) {
		if mustMembers(t, ana, roomA.ID)[bobID].Online {
			t.Fatal("Bob is online before opening a stream")
		}
		start := time.Now()
		bobRoom := bob.As(r2.URL).OpenStream(t, roomA.ID, "", nil)
		mustUntilReady(t, bobRoom)
		for name, s := range observers {
			if at := mustPresence(t, s, bobID, true, wait); at.Sub(start) > live {
				t.Fatalf("%s stream: online took %s", name, at.Sub(start))
			}
		}
		// A second stream, on another replica: he is online already.
		bobUser := bob.As(r1.URL).OpenUserStream(t, "", nil)
		mustUntilReady(t, bobUser)
		for name, s := range observers {
			if ps := presenceOf(t, s, bobID, live); len(ps) != 0 {
				t.Fatalf("%s stream: %+v after Bob's second stream (and shared rooms), want nothing more", name, ps)
			}
		}
		if !mustMembers(t, ana.As(r3.URL), roomA.ID)[bobID].Online {
			t.Fatal("GET members does not list Bob online")
		}
		// Never to the user it is about.
		for _, s := range []*e2e.Stream{bobRoom, bobUser} {
			if ps := presenceOf(t, s, bobID, 0); len(ps) != 0 {
				t.Fatalf("Bob heard of his own presence: %+v", ps)
			}
		}

		t.Run("OnDisconnect", func(t *testing.T) {
			closed := time.Now()
			bobRoom.Close()
			bobUser.Close()
			at := mustPresence(t, anaUser, bobID, false, wait)
			if d := at.Sub(closed); d < presenceGrace-100*time.Millisecond || d > presenceGrace+live {
				t.Fatalf("offline %s after the last stream closed, want about the grace %s", d, presenceGrace)
			}
			mustPresence(t, anaRoom, bobID, false, wait)
			if mustMembers(t, ana, roomA.ID)[bobID].Online {
				t.Fatal("GET members lists Bob online after he went offline")
			}
		})
	})

	t.Run("ReconnectWithinGrace", func(t *testing.T) {
		s := bob.As(r2.URL).OpenStream(t, roomB.ID, "", nil)
		mustUntilReady(t, s)
		mustPresence(t, anaUser, bobID, true, wait)
		// The connection drops; the client is back, on another replica,
		// well within the grace.
		s.Close()
		time.Sleep(presenceGrace / 4)
		s = bob.As(r1.URL).OpenUserStream(t, "", nil)
		mustUntilReady(t, s)
		if ps := presenceOf(t, anaUser, bobID, presenceGrace+live); len(ps) != 0 {
			t.Fatalf("a reconnect within the grace flapped: %+v", ps)
		}
		s.Close()
		mustPresence(t, anaUser, bobID, false, wait)
	})

	t.Run("ReplicaDeath", func(t *testing.T) {
		s := dan.As(r3.URL).OpenStream(t, roomA.ID, "", nil)
		mustUntilReady(t, s)
		for _, o := range observers {
			mustPresence(t, o, danID, true, wait)
		}
		killed := time.Now()
		r3.Kill() // SIGKILL: no goodbye
		at := mustPresence(t, anaRoom, danID, false, wait)
		if d := at.Sub(killed); d > presenceTimeout+500*time.Millisecond {
			t.Fatalf("offline %s after the replica died, want within PARLEY_PRESENCE_TIMEOUT=%s", d, presenceTimeout)
		} else {
			t.Logf("offline %s after SIGKILL (timeout %s)", d, presenceTimeout)
		}
		mustPresence(t, anaUser, danID, false, wait)
		// Two survivors, one announcement.
		for name, o := range observers {
			if ps := presenceOf(t, o, danID, presenceTimeout); len(ps) != 0 {
				t.Fatalf("%s stream: the departure was announced again: %+v", name, ps)
			}
		}
		if mustMembers(t, ana, roomA.ID)[danID].Online {
			t.Fatal("GET members lists Dan online after his replica died")
		}
	})
}
