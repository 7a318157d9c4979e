//go:build soak

package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// Settings, from the environment for a longer run by hand.
var (
	duration    = envDuration("PARLEY_SOAK_DURATION", 3*time.Minute)
	subscribers = envInt("PARLEY_SOAK_SUBSCRIBERS", 24)
	rooms       = envInt("PARLEY_SOAK_ROOMS", 3)
	postEvery   = envDuration("PARLEY_SOAK_POST_EVERY", 25*time.Millisecond) // per author
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// tally is what the soak counts.
type tally struct {
	requests, events, errors, losses atomic.Int64
	firstErr                         sync.Once
	errText                          atomic.Value
}

func (t *tally) fail(format string, args ...any) {
	t.errors.Add(1)
	t.firstErr.Do(func() { t.errText.Store(fmt.Sprintf(format, args...)) })
}

// usage is a replica's goroutines and memory.
type usage struct {
	goroutines int
	heap       float64 // bytes in use on the Go heap
	rss, peak  int64   // kB, from /proc
}

func measure(tb testing.TB, r *e2e.Replica) usage {
	tb.Helper()
	m := r.Metrics(tb)
	u := usage{goroutines: int(m["go_goroutines"]), heap: m["go_memstats_heap_inuse_bytes"]}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.PID()))
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				u.rss = n
			} else {
				u.peak = n
			}
		}
	}
	return u
}

// subscriber connects, reads a while and drops, over and over, resuming
// each time from the last event it saw, on either replica, by room stream
// or user stream. It checks each room's seqs come one after another.
type subscriber struct {
	client *e2e.Client // on replica 0; As() moves it
	bases  []string
	rooms  []string
	last   map[string]int64 // per room, the last seq seen
	cursor string           // the user stream's last id
	user   bool             // this turn uses the user stream
	tally  *tally
	rng    *rand.Rand
}

// session opens one stream (of room, on a room stream), reads for hold (or
// until the stream has seen through until, when until is set), and closes
// it.
func (s *subscriber) session(ctx context.Context, room string, hold time.Duration, until map[string]int64) {
	base := s.bases[s.rng.IntN(len(s.bases))]
	c := s.client.As(base)
	var req *http.Request
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.user {
		req = c.StreamRequest(sctx, "", "")
		if s.cursor != "" {
			req.Header.Set("Last-Event-ID", s.cursor)
		}
	} else {
		req = c.StreamRequest(sctx, room, "")
		req.Header.Set("Last-Event-ID", strconv.FormatInt(s.last[room], 10))
	}
	s.tally.requests.Add(1)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.tally.fail("open stream: %v", err)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.tally.fail("open stream: %d", resp.StatusCode)
		return
	}
	if until == nil {
		timer := time.AfterFunc(hold, cancel)
		defer timer.Stop()
	} else {
		timer := time.AfterFunc(time.Minute, cancel)
		defer timer.Stop()
	}
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			break // dropped: our cancel, or the server
		}
		if ev.Type == "ready" {
			var r struct {
				Cursor string `json:"cursor"`
			}
			if s.user && json.Unmarshal([]byte(ev.Data), &r) == nil && r.Cursor != "" {
				s.cursor = r.Cursor
			}
			continue
		}
		if chat.EphemeralType(chat.EventType(ev.Type)) {
			continue // no seq: not part of the log being checked
		}
		var d struct {
			RoomID string `json:"room_id"`
			Seq    int64  `json:"seq"`
		}
		if json.Unmarshal([]byte(ev.Data), &d) != nil || d.Seq == 0 {
			s.tally.fail("frame %q %q", ev.Type, ev.Data)
			return
		}
		s.tally.events.Add(1)
		r := room
		if s.user {
			r, s.cursor = d.RoomID, ev.LastEventID
		}
		if want := s.last[r] + 1; d.Seq != want {
			s.tally.losses.Add(1)
			s.tally.fail("room %s: seq %d after %d", r, d.Seq, s.last[r])
		}
		s.last[r] = max(s.last[r], d.Seq)
		if until != nil && s.caughtUp(until) {
			return
		}
	}
}

func (s *subscriber) randomRoom() string { return s.rooms[s.rng.IntN(len(s.rooms))] }

func (s *subscriber) caughtUp(until map[string]int64) bool {
	for r, seq := range until {
		if s.last[r] < seq {
			return false
		}
	}
	return true
}

// TestSoak churns streams while posts flow, then checks completeness and
// that each replica returned to its baseline.
func TestSoak(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_HEARTBEAT=1s")
	bin := e2e.PlainBinary(t)
	reps := []*e2e.Replica{c.MustStartBinary(t, bin), c.MustStartBinary(t, bin)}
	bases := []string{reps[0].URL, reps[1].URL}
	owner := e2e.MustRegister(t, reps[0].URL, "owner")
	var roomIDs []string
	for i := range rooms {
		roomIDs = append(roomIDs, owner.MustCreateRoom(t, fmt.Sprintf("soak-%d", i), chat.Public).ID)
	}
	var tl tally
	subs := make([]*subscriber, subscribers)
	for i := range subs {
		u := e2e.MustRegister(t, bases[i%2], fmt.Sprintf("sub%d", i))
		for _, r := range roomIDs {
			u.MustJoin(t, r)
		}
		subs[i] = &subscriber{client: u, bases: bases, rooms: roomIDs, last: map[string]int64{}, user: i%2 == 1, tally: &tl,
			rng: rand.New(rand.NewPCG(uint64(i), 7))}
		// Every room stream resumes from seq 0 the first time; the
		// user stream starts live, so it first learns where each room is.
	}
	// Seqs up to the last join are before the user streams start: start
	// each subscriber's rooms where the log is now.
	start := map[string]int64{}
	for _, r := range roomIDs {
		resp := owner.Do(t, http.MethodGet, "/v1/rooms/"+r, nil)
		var room chat.Room
		resp.JSON(t, &room)
		start[r] = room.LastSeq
	}
	for _, s := range subs {
		if s.user {
			for r, seq := range start {
				s.last[r] = seq
			}
			// Open once to get a cursor at the log's current end.
			s.session(t.Context(), "", 300*time.Millisecond, nil)
		}
	}
	// Warm up, then take the baseline with nothing open.
	for range 3 {
		for _, s := range subs {
			s.session(t.Context(), s.randomRoom(), 50*time.Millisecond, nil)
		}
	}
	waitSettled(t, reps)
	base := []usage{measure(t, reps[0]), measure(t, reps[1])}

	ctx, stop := context.WithTimeout(t.Context(), duration)
	defer stop()
	var wg sync.WaitGroup
	authors := []*e2e.Client{owner, subs[0].client, subs[1].client}
	var posted sync.Map // client_id -> struct{}
	for a, author := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(postEvery)
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				cl := author.As(bases[i%2])
				body := map[string]string{"body": fmt.Sprintf("soak %d/%d", a, i), "client_id": fmt.Sprintf("a%d-%d", a, i)}
				for attempt := 0; ; attempt++ {
					tl.requests.Add(1)
					resp, err := cl.Try(http.MethodPost, "/v1/rooms/"+roomIDs[i%len(roomIDs)]+"/messages", body)
					if err == nil && (resp.Status == http.StatusCreated || attempt > 0 && resp.Status == http.StatusOK) {
						posted.Store(body["client_id"], struct{}{})
						break
					}
					status := 0
					if resp != nil {
						status = resp.Status
					}
					tl.fail("post %s: %d %v", body["client_id"], status, err)
					if attempt >= 5 {
						break
					}
					time.Sleep(100 * time.Millisecond) // retry the same client_id
				}
			}
		}()
	}
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.session(ctx, s.randomRoom(), time.Duration(100+s.rng.IntN(1900))*time.Millisecond, nil)
			}
		}()
	}
	var peak []int64
	sample := time.NewTicker(5 * time.Second)
	peak = []int64{base[0].peak, base[1].peak}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-sample.C:
			for i, r := range reps {
				peak[i] = max(peak[i], measure(t, r).rss)
			}
		}
	}
	sample.Stop()
	wg.Wait()

	// Every subscriber catches up with every room, with nothing missing.
	final := map[string]int64{}
	for _, r := range roomIDs {
		resp := owner.Do(t, http.MethodGet, "/v1/rooms/"+r, nil)
		var room chat.Room
		resp.JSON(t, &room)
		final[r] = room.LastSeq
	}
	for _, s := range subs {
		if s.user {
			for turn := 0; !s.caughtUp(final) && turn < 3; turn++ {
				s.session(t.Context(), "", 0, final)
			}
		} else {
			// A room stream catches up one room at a time.
			for _, r := range roomIDs {
				for turn := 0; s.last[r] < final[r] && turn < 3; turn++ {
					s.session(t.Context(), r, 0, map[string]int64{r: final[r]})
				}
			}
		}
		if !s.caughtUp(final) {
			tl.losses.Add(1)
			tl.fail("%s stopped at %v, rooms end at %v", s.client.Session.User.Username, s.last, final)
		}
	}
	stored := 0
	posted.Range(func(any, any) bool { stored++; return true })

	// Each replica settles back near its baseline.
	waitSettled(t, reps)
	end := []usage{measure(t, reps[0]), measure(t, reps[1])}
	var errText string
	if v := tl.errText.Load(); v != nil {
		errText = v.(string)
	}
	fmt.Printf("soak: %s, 2 replicas, %d subscribers, %d rooms: requests=%d posts=%d events=%d errors=%d losses=%d; "+
		"goroutines %d/%d -> %d/%d; heap %.1f/%.1f -> %.1f/%.1f MiB; rss baseline %.1f/%.1f, peak %.1f/%.1f, final %.1f/%.1f MiB\n",
		duration, subscribers, rooms, tl.requests.Load(), stored, tl.events.Load(), tl.errors.Load(), tl.losses.Load(),
		base[0].goroutines, base[1].goroutines, end[0].goroutines, end[1].goroutines,
		base[0].heap/(1<<20), base[1].heap/(1<<20), end[0].heap/(1<<20), end[1].heap/(1<<20),
		float64(base[0].rss)/1024, float64(base[1].rss)/1024, float64(max(peak[0], end[0].peak))/1024, float64(max(peak[1], end[1].peak))/1024,
		float64(end[0].rss)/1024, float64(end[1].rss)/1024)
	if tl.errors.Load() > 0 || tl.losses.Load() > 0 {
		t.Errorf("%d errors, %d losses; first: %s", tl.errors.Load(), tl.losses.Load(), errText)
	}
	for i := range reps {
		if end[i].goroutines > base[i].goroutines+10 {
			t.Errorf("replica %d: %d goroutines after the soak, %d before", i, end[i].goroutines, base[i].goroutines)
		}
		if end[i].heap > base[i].heap+32<<20 {
			t.Errorf("replica %d: heap %.1f MiB after the soak, %.1f before", i, end[i].heap/(1<<20), base[i].heap/(1<<20))
		}
		if end[i].rss > 2*base[i].rss+64<<10 {
			t.Errorf("replica %d: RSS %d kB after the soak, %d before", i, end[i].rss, base[i].rss)
		}
	}
}

// waitSettled waits until no stream is open on any replica, then lets the
// runtime collect what they held.
func waitSettled(tb testing.TB, reps []*e2e.Replica) {
	tb.Helper()
	for _, r := range reps {
		r.WaitMetric(tb, "parley_stream_subscribers", 0, time.Minute)
	}
	time.Sleep(2 * time.Second) // streams' goroutines end just after their count drops; a GC cycle passes
}
