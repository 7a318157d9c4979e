package userstream

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// subscriber is one user stream client that drops its connection at
// random points and resumes on the other replica with its last id.
type subscriber struct {
	name     string
	user     *e2e.Client
	replicas []string
	rng      *rand.Rand

	mu       sync.Mutex
	got      []event // every durable event received, in arrival order
	last     string  // the last id (or ready cursor) received
	resumes  int
	replayed int
	longest  int
	// open is the connection opened before the run, already past ready.
	open *e2e.Stream
}

// connect opens the stream on replica i, from the last id if any, and
// returns it with the frames it replayed before ready.
func (s *subscriber) connect(tb testing.TB, i int) (*e2e.Stream, error) {
	var header http.Header
	if s.last != "" {
		header = http.Header{"Last-Event-ID": {s.last}}
	}
	st, err := s.user.As(s.replicas[i%len(s.replicas)]).TryStream("", "", header)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// run reads frames, reconnecting after a random number of them, until
// done reports it has everything; it returns an error for anything wrong.
func (s *subscriber) run(tb testing.TB, done func() bool, stop <-chan struct{}) error {
	replica := s.rng.IntN(len(s.replicas))
	for {
		st, seenReady := s.open, true
		s.open = nil
		if st == nil {
			var err error
			if st, err = s.connect(tb, replica); err != nil {
				return fmt.Errorf("%s: connect: %w", s.name, err)
			}
			seenReady = false
		}
		budget := 1 + s.rng.IntN(120) // frames until this connection drops
		for budget > 0 {
			var f e2e.Frame
			var ok bool
			select {
			case f, ok = <-st.Frames:
			case <-time.After(wait):
				st.Close()
				return fmt.Errorf("%s: no frame within %s (have %d events)", s.name, wait, len(s.got))
			case <-stop:
				st.Close()
				return nil
			}
			if !ok {
				break // the server ended it: resume
			}
			switch f.Type {
			case "ready":
				var r chat.UserReady
				if err := json.Unmarshal([]byte(f.Data), &r); err != nil || !cursorChars.MatchString(r.Cursor) {
					st.Close()
					return fmt.Errorf("%s: bad ready %q", s.name, f.Data)
				}
				s.mu.Lock()
				s.last, seenReady = r.Cursor, true
				s.mu.Unlock()
				continue
			case "reauth":
				continue
			}
			var e event
			if err := json.Unmarshal([]byte(f.Data), &e); err != nil || e.RoomID == "" || !cursorChars.MatchString(f.RawID) {
				st.Close()
				return fmt.Errorf("%s: bad frame %+v", s.name, f)
			}
			e.Type = f.Type
			s.mu.Lock()
			s.got = append(s.got, e)
			s.last = f.RawID
			s.longest = max(s.longest, len(f.RawID))
			if !seenReady {
				s.replayed++
			}
			s.mu.Unlock()
			budget--
			if done() {
				st.Close()
				return nil
			}
		}
		st.Close()
		s.resumes++
		replica++ // resume on the other replica
	}
}

func (s *subscriber) received() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// TestResumeAcrossReplicas is the user stream's proof: 8 users in 60 rooms
// (one in 50), a poster in every room at once, joins and leaves during the
// run, and subscribers that drop their connection at random points and
// resume on the other replica with their last id. Every subscriber ends
// with exactly the events of its rooms during its memberships, each once,
// in each room's order.
func TestResumeAcrossReplicas(t *testing.T) {
	const (
		nRooms, nUsers, posts, toggles = 60, 8, 20, 6
	)
	rng := rand.New(rand.NewPCG(13, 13))
	c := e2e.NewCluster(t, unlimited...)
	replicas := []*e2e.Replica{c.MustStart(t), c.MustStart(t)}
	urls := []string{replicas[0].URL, replicas[1].URL}
	owner := e2e.MustRegister(t, urls[0], "owner")
	var rooms []string
	for i := range nRooms {
		rooms = append(rooms, owner.MustCreateRoom(t, fmt.Sprintf("room-%d", i), chat.Public).ID)
	}
	var users []*e2e.Client
	member := make([]map[string]bool, nUsers)
	for u := range nUsers {
		cl := e2e.MustRegister(t, urls[u%2], fmt.Sprintf("user%d", u))
		users = append(users, cl)
		member[u] = map[string]bool{}
		n := 5 + rng.IntN(8)
		if u == 0 {
			n = 50
		}
		for _, i := range rng.Perm(nRooms)[:n] {
			cl.MustJoin(t, rooms[i])
			member[u][rooms[i]] = true
		}
	}

	// Subscribers start live: their position in each room is its last seq
	// now (nothing happens until they are all ready).
	var subs []*subscriber
	for u := range nUsers {
		subs = append(subs, &subscriber{name: fmt.Sprintf("user%d", u), user: users[u], replicas: urls, rng: rand.New(rand.NewPCG(uint64(u), 7))})
	}
	subs = append(subs, &subscriber{name: "user0-second", user: users[0], replicas: urls, rng: rand.New(rand.NewPCG(99, 7))})
	for _, s := range subs {
		st, err := s.connect(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.last, s.open = readyCursor(t, st.Next(t, wait)), st
		t.Cleanup(st.Close)
	}
	start := lastSeqs(t, owner, rooms)

	// The run: a poster per room, and each user joining and leaving rooms.
	var wg sync.WaitGroup
	errs := make(chan error, nRooms+nUsers+len(subs))
	for i, id := range rooms {
		wg.Go(func() {
			poster := owner.As(urls[i%2])
			for k := range posts {
				resp, err := poster.Try(http.MethodPost, "/v1/rooms/"+id+"/messages", map[string]string{"body": fmt.Sprintf("room %d post %d", i, k)})
				if err != nil || resp.Status != http.StatusCreated {
					errs <- fmt.Errorf("post: %v %v", err, resp)
					return
				}
			}
		})
	}
	for u, cl := range users {
		order := rng.Perm(nRooms)[:toggles]
		wg.Go(func() {
			for k, i := range order {
				id := rooms[i]
				path := "/v1/rooms/" + id + "/join"
				want := http.StatusOK
				if member[u][id] {
					path, want = "/v1/rooms/"+id+"/leave", http.StatusNoContent
				}
				resp, err := cl.As(urls[k%2]).Try(http.MethodPost, path, nil)
				if err != nil || resp.Status != want {
					errs <- fmt.Errorf("user%d %s: %v %v", u, path, err, resp)
					return
				}
			}
		})
	}
	// Subscribers read (and drop and resume) all along; they stop once
	// they hold as many events as they are owed, known after the run.
	var mu sync.Mutex
	owedCount := map[*subscriber]int{}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Go(func() {
			done := func() bool {
				mu.Lock()
				defer mu.Unlock()
				n, ok := owedCount[s]
				return ok && len(s.got) >= n
			}
			if err := s.run(t, done, stop); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		close(stop)
		readers.Wait()
		t.Fatal(err)
	default:
	}

	// What each user is owed, from each room's whole log.
	logs := map[string][]event{}
	for _, id := range rooms {
		logs[id] = roomLog(t, owner, id)
	}
	owed := map[string]map[string][]int64{}
	for _, cl := range users {
		owed[cl.Session.User.ID] = owedEvents(logs, cl.Session.User.ID, start)
	}
	mu.Lock()
	for _, s := range subs {
		for _, seqs := range owed[s.user.Session.User.ID] {
			owedCount[s] += len(seqs)
		}
	}
	mu.Unlock()
	// A subscriber that already holds everything waits for a frame that
	// will not come: check completion from here too.
	finished := make(chan struct{})
	go func() { readers.Wait(); close(finished) }()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	timeout := time.After(2 * wait)
wait:
	for {
		select {
		case <-finished:
			break wait
		case err := <-errs:
			close(stop)
			readers.Wait()
			t.Fatal(err)
		case <-timeout:
			close(stop)
			readers.Wait()
			t.Fatal("subscribers did not finish")
		case <-poll.C:
			mu.Lock()
			all := true
			for _, s := range subs {
				s.mu.Lock()
				all = all && len(s.got) >= owedCount[s]
				s.mu.Unlock()
			}
			mu.Unlock()
			if all {
				close(stop)
				readers.Wait()
				break wait
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total, resumes := 0, 0
	for _, s := range subs {
		want := owed[s.user.Session.User.ID]
		got := map[string][]int64{}
		for _, e := range s.received() {
			got[e.RoomID] = append(got[e.RoomID], e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			for id := range logs {
				if fmt.Sprint(got[id]) != fmt.Sprint(want[id]) {
					t.Errorf("%s in room %s: got %v, want %v", s.name, id, got[id], want[id])
				}
			}
			t.Fatalf("%s did not get exactly what it is owed", s.name)
		}
		// Resuming from its last id replays nothing more.
		st, err := s.connect(t, s.resumes+1)
		if err != nil {
			t.Fatal(err)
		}
		if replayed := st.UntilReady(t, wait); len(replayed) != 0 {
			t.Fatalf("%s: its last id replayed %d more frames", s.name, len(replayed))
		}
		st.Close()
		total += len(s.got)
		resumes += s.resumes
		t.Logf("%s: %d events in %d rooms, %d resumes, %d replayed, longest id %d", s.name, len(s.got), len(want), s.resumes, s.replayed, s.longest)
	}
	if resumes < len(subs) {
		t.Fatalf("only %d resumes in all: the test did not exercise resuming", resumes)
	}
	t.Logf("%d events checked over %d resumes", total, resumes)
}

func lastSeqs(tb testing.TB, c *e2e.Client, rooms []string) map[string]int64 {
	tb.Helper()
	m := map[string]int64{}
	for _, id := range rooms {
		var r chat.Room
		c.Do(tb, http.MethodGet, "/v1/rooms/"+id, nil).JSON(tb, &r)
		m[id] = r.LastSeq
	}
	return m
}

// roomLog is a room's whole log, from its room stream with after=0.
func roomLog(tb testing.TB, c *e2e.Client, roomID string) []event {
	tb.Helper()
	st := c.OpenStream(tb, roomID, "after=0", nil)
	defer st.Close()
	var evs []event
	for i, f := range st.UntilReady(tb, wait) {
		var e event
		if err := json.Unmarshal([]byte(f.Data), &e); err != nil || f.ID != int64(i+1) {
			tb.Fatalf("room %s log frame %d: %+v", roomID, i, f)
		}
		e.Type, e.Seq = f.Type, f.ID
		evs = append(evs, e)
	}
	return evs
}

// owedEvents is what userID is owed after the start positions: in each
// room, the events from their member.joined to their member.left.
func owedEvents(logs map[string][]event, userID string, start map[string]int64) map[string][]int64 {
	owed := map[string][]int64{}
	for id, evs := range logs {
		in := false
		for _, e := range evs {
			own := e.subject() == userID
			if e.Type == "member.joined" && own {
				in = true
			}
			if in && e.Seq > start[id] {
				owed[id] = append(owed[id], e.Seq)
			}
			if e.Type == "member.left" && own || e.Type == "room.deleted" {
				in = false
			}
		}
	}
	return owed
}
