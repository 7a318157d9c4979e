package limits

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// streamWait bounds how long a stream takes to open or a closed one to be
// counted out, on a loaded machine.
const streamWait = 20 * time.Second

// endpoint is one of the two stream operations: a room stream (roomID set)
// or the user stream.
type endpoint struct {
	name   string
	roomID string
}

func endpoints(roomID string) []endpoint {
	return []endpoint{{"RoomStream", roomID}, {"UserStream", ""}}
}

// mustOpen opens a stream of ep and reads up to its ready frame.
func mustOpen(tb testing.TB, c *e2e.Client, ep endpoint, query string) *e2e.Stream {
	tb.Helper()
	s, refused, err := c.TryStreamOrRefusal(ep.roomID, query, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if refused != nil {
		tb.Fatalf("%s refused: %d %s", ep.name, refused.Status, refused.Body)
	}
	tb.Cleanup(s.Close)
	s.UntilReady(tb, streamWait)
	return s
}

// mustRefuse opens a stream of ep, expecting the problem want with a
// Retry-After, and returns the wait.
func mustRefuse(tb testing.TB, c *e2e.Client, ep endpoint, query string, want int) time.Duration {
	tb.Helper()
	s, refused, err := c.TryStreamOrRefusal(ep.roomID, query, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if s != nil {
		s.Close()
		tb.Fatalf("%s opened, want %d", ep.name, want)
	}
	return MustRetryAfter(tb, refused, want)
}

// TestStreamCapPerUser: a user's room and user streams together count
// against PARLEY_STREAMS_PER_USER on each endpoint; the next one is a 429
// with Retry-After, another user is not held back, and a stream closed
// frees its slot for the next one: at once (counted out) or after waiting
// Retry-After, as a client does.
func TestStreamCapPerUser(t *testing.T) {
	t.Parallel()
	const perUser = 3
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_STREAMS_PER_USER="+strconv.Itoa(perUser))
	alice := e2e.MustRegister(t, r.URL, "alice")
	bob := e2e.MustRegister(t, r.URL, "bob")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	bob.MustJoin(t, room.ID)

	for _, ep := range endpoints(room.ID) {
		t.Run(ep.name, func(t *testing.T) {
			// One of each kind, then ep's kind up to the cap.
			open := []*e2e.Stream{
				mustOpen(t, alice, endpoint{"RoomStream", room.ID}, ""),
				mustOpen(t, alice, endpoint{"UserStream", ""}, ""),
			}
			for len(open) < perUser {
				open = append(open, mustOpen(t, alice, ep, ""))
			}
			r.WaitMetric(t, "parley_streams_open", perUser, streamWait)
			refusedBefore := r.Metrics(t)[`parley_stream_refusals_total{cap="user"}`]
			for _, other := range endpoints(room.ID) {
				mustRefuse(t, alice, other, "", http.StatusTooManyRequests)
			}
			r.WaitMetric(t, `parley_stream_refusals_total{cap="user"}`, refusedBefore+2, streamWait)

			// Another user has slots of their own.
			b := mustOpen(t, bob, ep, "")
			b.Close()

			// Closed, counted out: the next one opens.
			r.WaitMetric(t, "parley_streams_open", perUser, streamWait)
			open[0].Close()
			r.WaitMetric(t, "parley_streams_open", perUser-1, streamWait)
			open[0] = mustOpen(t, alice, ep, "")

			// A client that waits Retry-After after closing one gets in.
			wait := mustRefuse(t, alice, ep, "", http.StatusTooManyRequests)
			open[1].Close()
			time.Sleep(wait) // what the client is told to do
			open[1] = mustOpen(t, alice, ep, "")

			for _, s := range open {
				s.Close()
			}
			r.WaitMetric(t, "parley_streams_open", 0, streamWait)
		})
	}
}

// TestStreamCapPerReplica: at PARLEY_MAX_STREAMS a replica answers 503 with
// Retry-After on both endpoints, to any user; the caps are per replica, so
// the other replica still opens streams for them (and for a user at their
// own cap on the first).
func TestStreamCapPerReplica(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	env := []string{"PARLEY_MAX_STREAMS=3", "PARLEY_STREAMS_PER_USER=2"}
	r1, r2 := c.MustStart(t, env...), c.MustStart(t, env...)
	alice := e2e.MustRegister(t, r1.URL, "alice")
	bob := e2e.MustRegister(t, r1.URL, "bob")
	carol := e2e.MustRegister(t, r1.URL, "carol")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	bob.MustJoin(t, room.ID)
	carol.MustJoin(t, room.ID)
	eps := endpoints(room.ID)

	// alice fills her own cap on r1, then bob fills the replica.
	mustOpen(t, alice, eps[0], "")
	mustOpen(t, alice, eps[1], "")
	for _, ep := range eps {
		mustRefuse(t, alice, ep, "", http.StatusTooManyRequests)
	}
	mustOpen(t, bob, eps[0], "")
	r1.WaitMetric(t, "parley_streams_open", 3, streamWait)
	for _, ep := range eps {
		t.Run("Full"+ep.name, func(t *testing.T) {
			mustRefuse(t, carol, ep, "", http.StatusServiceUnavailable)
			mustRefuse(t, bob, ep, "", http.StatusServiceUnavailable)
		})
	}
	r1.WaitMetric(t, `parley_stream_refusals_total{cap="replica"}`, 4, streamWait)
	// At her own cap, alice is told so (429) rather than that the replica
	// is full: that is the one she can do something about.
	mustRefuse(t, alice, eps[1], "", http.StatusTooManyRequests)

	t.Run("OtherReplica", func(t *testing.T) {
		// alice, at her cap on r1, opens up to her cap on r2; carol, refused
		// by the full r1, opens there too.
		for _, ep := range eps {
			mustOpen(t, alice.As(r2.URL), ep, "")
		}
		mustOpen(t, carol.As(r2.URL), eps[1], "")
		r2.WaitMetric(t, "parley_streams_open", 3, streamWait)
		r1.WaitMetric(t, "parley_streams_open", 3, streamWait)
	})
}

// TestStreamCapConcurrentOpens: 40 streams of one user opened at once
// against the contract's cap of 32 (half room streams, half user streams):
// exactly 32 open and 8 are refused with 429, however they interleave.
func TestStreamCapConcurrentOpens(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	eps := endpoints(room.ID)
	// Enough idle connections that each open is its own connection.
	alice.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	const attempts, limit = 40, 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var opened []*e2e.Stream
	statuses := map[int]int{}
	start := make(chan struct{})
	for i := range attempts {
		wg.Go(func() {
			<-start
			s, refused, err := alice.TryStreamOrRefusal(eps[i%2].roomID, "", nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("open %d: %v", i, err)
			case refused != nil:
				statuses[refused.Status]++
				if refused.Status == http.StatusTooManyRequests {
					if n, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || n < 1 {
						t.Errorf("429 with Retry-After %q", refused.Header.Get("Retry-After"))
					}
				}
			default:
				statuses[http.StatusOK]++
				opened = append(opened, s)
			}
		})
	}
	close(start)
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range opened {
			s.Close()
		}
	})
	if statuses[http.StatusOK] != limit || statuses[http.StatusTooManyRequests] != attempts-limit || len(statuses) != 2 {
		t.Fatalf("answers %v, want %d x 200 and %d x 429", statuses, limit, attempts-limit)
	}
	for _, s := range opened {
		s.UntilReady(t, streamWait)
	}
	m := r.WaitMetric(t, "parley_streams_open", limit, streamWait)
	if n := m[`parley_stream_refusals_total{cap="user"}`]; n != attempts-limit {
		t.Fatalf("refusals counted %v, want %d", n, attempts-limit)
	}
}

// TestStreamCapKeepsTicket: a stream refused at the cap leaves its ticket
// valid (contract: a ticket is used up only by a stream that opens); once
// a slot frees, the same ticket opens the stream, and only once.
func TestStreamCapKeepsTicket(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_STREAMS_PER_USER=1")
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	browser := *alice // what EventSource sends: no Authorization header
	browser.Token = ""

	for _, ep := range endpoints(room.ID) {
		t.Run(ep.name, func(t *testing.T) {
			held := mustOpen(t, alice, ep, "")
			resp := alice.Do(t, http.MethodPost, "/v1/stream-tickets", nil)
			if resp.Status != http.StatusCreated {
				t.Fatalf("mint ticket: %d %s", resp.Status, resp.Body)
			}
			var tk chat.StreamTicket
			resp.JSON(t, &tk)
			query := "ticket=" + tk.Ticket
			for range 3 {
				mustRefuse(t, &browser, ep, query, http.StatusTooManyRequests)
			}
			held.Close()
			r.WaitMetric(t, "parley_streams_open", 0, streamWait)
			s := mustOpen(t, &browser, ep, query)
			s.Close()
			r.WaitMetric(t, "parley_streams_open", 0, streamWait)
			_, refused, err := browser.TryStreamOrRefusal(ep.roomID, query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if refused == nil {
				t.Fatal("a used ticket opened a second stream")
			}
			refused.MustProblem(t, http.StatusUnauthorized)
		})
	}
}

// TestStreamCapOff: 0 turns the caps off: more streams of one user than
// the contract's default 32 open.
func TestStreamCapOff(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_STREAMS_PER_USER=0", "PARLEY_MAX_STREAMS=0")
	alice := e2e.MustRegister(t, r.URL, "alice")
	const n = 40
	for i := range n {
		mustOpen(t, alice, endpoint{fmt.Sprintf("UserStream%d", i), ""}, "")
	}
	r.WaitMetric(t, "parley_streams_open", n, streamWait)
}

// TestStreamCapFailedOpens: opens that fail after the slot was taken (a
// room that is not there, a room the caller is not in) give it back: at a
// cap of one, the caller's next stream opens.
func TestStreamCapFailedOpens(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_STREAMS_PER_USER=1")
	alice := e2e.MustRegister(t, r.URL, "alice")
	bob := e2e.MustRegister(t, r.URL, "bob")
	private := bob.MustCreateRoom(t, "bob-only", chat.Private)
	for _, tt := range []struct {
		name   string
		roomID string
	}{
		{"ErrNotFound", "00000000-0000-0000-0000-000000000000"},
		{"ErrNotMember", private.ID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 {
				_, refused, err := alice.TryStreamOrRefusal(tt.roomID, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				if refused == nil {
					t.Fatal("stream opened")
				}
				// A private room hides from non-members (404) or
				// refuses them (403): either way the open failed.
				if refused.Status != http.StatusNotFound && refused.Status != http.StatusForbidden {
					t.Fatalf("status %d, want 404 or 403: %s", refused.Status, refused.Body)
				}
			}
		})
	}
	r.WaitMetric(t, "parley_streams_open", 0, streamWait)
	mustOpen(t, alice, endpoint{"UserStream", ""}, "")
}
