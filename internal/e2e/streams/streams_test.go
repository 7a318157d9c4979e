// Package streams tests the live room streams across replicas: fan-out,
// ordering, resume and framing. Most tests read as users do, through
// package api's stream reader (e2e.Read); framing_test.go and the cursor
// tests read raw frames.
package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/api"
	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const wait = 20 * time.Second

// MustMessage decodes a message frame.
func MustMessage(tb testing.TB, f e2e.Frame) chat.Message {
	tb.Helper()
	if f.Type != "message" {
		tb.Fatalf("frame %+v: want a message", f)
	}
	var m chat.Message
	if err := json.Unmarshal([]byte(f.Data), &m); err != nil {
		tb.Fatalf("decode message %q: %v", f.Data, err)
	}
	if m.Seq != f.ID {
		tb.Fatalf("frame id %d, message seq %d", f.ID, m.Seq)
	}
	return m
}

// MustRead decodes a message event read through package api's stream
// reader.
func MustRead(tb testing.TB, ev api.Event) *api.Message {
	tb.Helper()
	m, ok := ev.Payload.(*api.Message)
	if ev.Type != api.EventMessage || !ok {
		tb.Fatalf("event %+v: want a message", ev)
	}
	if m.Seq != ev.Seq() {
		tb.Fatalf("event id %q, message seq %d", ev.ID, m.Seq)
	}
	return m
}

// TestTwoReplicas: subscribers on both replicas, posts on either: every
// subscriber gets every event of its room once, in order, and nothing from
// other rooms.
func TestTwoReplicas(t *testing.T) {
	c := e2e.NewCluster(t)
	a, b := c.MustStart(t), c.MustStart(t)
	alice := e2e.MustRegister(t, a.URL, "alice")
	bob := e2e.MustRegister(t, b.URL, "bob")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	other := alice.MustCreateRoom(t, "other", chat.Public)
	bob.MustJoin(t, room.ID)

	// Read as users read: through package api's stream reader.
	readers := []*e2e.Reader{
		e2e.Read(t, alice.API(t), room.ID, api.StreamOptions{}),
		e2e.Read(t, alice.As(b.URL).API(t), room.ID, api.StreamOptions{}),
		e2e.Read(t, bob.API(t), room.ID, api.StreamOptions{}),
		e2e.Read(t, bob.As(a.URL).API(t), room.ID, api.StreamOptions{}),
	}
	for _, r := range readers {
		if got := r.UntilReady(t, wait); len(got) != 0 {
			t.Fatalf("a live start replayed %d events", len(got))
		}
	}
	const n = 20
	var want []string
	for i := range n {
		poster := alice
		if i%2 == 1 {
			poster = bob
		}
		want = append(want, poster.MustPost(t, room.ID, fmt.Sprintf("m%d", i)).ID)
		// Noise in another room, posted through the other replica.
		alice.As(b.URL).MustPost(t, other.ID, fmt.Sprintf("noise %d", i))
	}
	// A member.left closes the sequence, so anything extra would show
	// before it.
	leave := bob.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil)
	if leave.Status != http.StatusNoContent {
		t.Fatalf("leave: %d", leave.Status)
	}
	for i, r := range readers {
		for j := range n {
			if m := MustRead(t, r.Next(t, wait)); m.Id != want[j] || m.RoomId != room.ID {
				t.Fatalf("reader %d event %d: got %s in %s, want %s", i, j, m.Id, m.RoomId, want[j])
			}
		}
		if ev := r.Next(t, wait); ev.Type != api.EventMemberLeft {
			t.Fatalf("reader %d: got %+v, want member.left", i, ev)
		}
	}
	// Bob's own streams end after his member.left, and reconnecting is
	// refused (a public room: 403); Alice's stay open.
	for _, r := range readers[2:] {
		if evs, err := r.WaitEnd(t, wait); len(evs) != 0 || api.ErrorStatus(err) != http.StatusForbidden {
			t.Fatalf("bob's reader ended with %v after %+v, want 403", err, evs)
		}
		if err := r.NextReconnect(t, wait); !errors.Is(err, api.ErrStreamEnded) {
			t.Fatalf("bob's reader reconnected for %v, want the stream's end", err)
		}
	}
	for _, r := range readers[:2] {
		select {
		case ev, ok := <-r.Events:
			t.Fatalf("alice's reader: %+v (open %v), want nothing more", ev, ok)
		default:
		}
	}
}

// TestFanOutManyRooms: 10 rooms x 20 subscribers over both replicas and
// 1,000 posts from concurrent posters: every subscriber sees consecutive
// seq values from where it started to the room's last, none missing or
// repeated.
func TestFanOutManyRooms(t *testing.T) {
	const rooms, subsPerRoom, posts, posters = 10, 20, 1000, 8
	c := e2e.NewCluster(t)
	replicas := []*e2e.Replica{c.MustStart(t), c.MustStart(t)}
	owner := e2e.MustRegister(t, replicas[0].URL, "owner")
	var users []*e2e.Client
	for i := range 4 {
		users = append(users, e2e.MustRegister(t, replicas[i%2].URL, fmt.Sprintf("user%d", i)))
	}
	type sub struct {
		room  string
		start int64
		s     *e2e.Stream
	}
	var roomIDs []string
	var subs []sub
	for r := range rooms {
		room := owner.MustCreateRoom(t, fmt.Sprintf("room-%d", r), chat.Public)
		roomIDs = append(roomIDs, room.ID)
		for _, u := range users {
			u.MustJoin(t, room.ID)
		}
		for i := range subsPerRoom {
			u := users[i%len(users)].As(replicas[i%2].URL)
			s := u.OpenStream(t, room.ID, "", nil)
			subs = append(subs, sub{room: room.ID, s: s})
		}
	}
	for i := range subs {
		subs[i].s.UntilReady(t, wait)
	}
	// Starting positions: the ready frame's last_seq is where live began;
	// read it from the room (nothing was posted since).
	lastSeq := map[string]int64{}
	for _, id := range roomIDs {
		var r chat.Room
		owner.Do(t, http.MethodGet, "/v1/rooms/"+id, nil).JSON(t, &r)
		lastSeq[id] = r.LastSeq
	}
	for i := range subs {
		subs[i].start = lastSeq[subs[i].room]
	}

	var wg sync.WaitGroup
	errs := make(chan error, posts)
	for p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := users[p%len(users)].As(replicas[p%2].URL)
			for i := p; i < posts; i += posters {
				resp, err := u.Try(http.MethodPost, "/v1/rooms/"+roomIDs[i%rooms]+"/messages", map[string]string{"body": fmt.Sprintf("post %d", i)})
				if err != nil || resp.Status != http.StatusCreated {
					errs <- fmt.Errorf("post %d: %v %v", i, err, resp)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range roomIDs {
		var r chat.Room
		owner.Do(t, http.MethodGet, "/v1/rooms/"+id, nil).JSON(t, &r)
		if r.LastSeq != lastSeq[id]+posts/rooms {
			t.Fatalf("room %s last_seq %d, want %d", id, r.LastSeq, lastSeq[id]+posts/rooms)
		}
		lastSeq[id] = r.LastSeq
	}
	for i, sb := range subs {
		next := sb.start + 1
		for next <= lastSeq[sb.room] {
			f := sb.s.Next(t, wait)
			if f.ID != next {
				t.Fatalf("subscriber %d of room %s: got seq %d, want %d", i, sb.room, f.ID, next)
			}
			next++
		}
	}
}

// TestResumeDuringPosting: a client that missed 100 events resumes with
// Last-Event-ID while posts keep arriving: it gets all of them replayed,
// then live, with no gap and no duplicate.
func TestResumeDuringPosting(t *testing.T) {
	c := e2e.NewCluster(t)
	a, b := c.MustStart(t), c.MustStart(t)
	alice := e2e.MustRegister(t, a.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	first := alice.MustPost(t, room.ID, "seen")
	for i := range 100 {
		alice.MustPost(t, room.ID, fmt.Sprintf("missed %d", i))
	}
	// Keep posting through the other replica while the client resumes.
	stop := make(chan struct{})
	posted := make(chan int64, 1)
	go func() {
		var last int64
		defer func() { posted <- last }()
		poster := alice.As(b.URL)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := poster.Try(http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": fmt.Sprintf("during %d", i)})
			if err != nil || resp.Status != http.StatusCreated {
				return
			}
			var m chat.Message
			if json.Unmarshal(resp.Body, &m) == nil {
				last = m.Seq
			}
		}
	}()
	// The reader sends its position as Last-Event-ID.
	r := e2e.Read(t, alice.API(t), room.ID, api.StreamOptions{After: fmt.Sprint(first.Seq)})
	replayed := r.UntilReady(t, wait)
	if len(replayed) < 100 {
		t.Fatalf("replayed %d events, want at least 100", len(replayed))
	}
	close(stop)
	last := <-posted
	next := first.Seq + 1
	for _, ev := range replayed {
		if m := MustRead(t, ev); m.Seq != next {
			t.Fatalf("replay: got seq %d, want %d", m.Seq, next)
		}
		next++
	}
	for next <= last {
		if m := MustRead(t, r.Next(t, wait)); m.Seq != next {
			t.Fatalf("live: got seq %d, want %d", m.Seq, next)
		}
		next++
	}
	if r.Stream.LastID() != fmt.Sprint(last) {
		t.Fatalf("reader's last id %q, want %d", r.Stream.LastID(), last)
	}
}

// TestResumeCursors covers the cursor rules: the header wins over after,
// after=0 replays from the start, a cursor past the end starts live, and a
// bad cursor is 422.
func TestResumeCursors(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	for i := range 5 {
		alice.MustPost(t, room.ID, fmt.Sprintf("m%d", i)) // seq 2..6
	}
	tests := []struct {
		name   string
		query  string
		header string
		first  int64 // first replayed seq, 0 for none
	}{
		{"AfterZero", "after=0", "", 1},
		{"After", "after=4", "", 5},
		{"HeaderWins", "after=1", "3", 4},
		{"HeaderZero", "", "0", 1},
		{"PastTheEnd", "after=1000", "", 0},
		{"Live", "", "", 0},
		{"EmptyAfterIsLive", "after=", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Last-Event-ID", tt.header)
			}
			s := alice.OpenStream(t, room.ID, tt.query, h)
			got := s.UntilReady(t, wait)
			if tt.first == 0 {
				if len(got) != 0 {
					t.Fatalf("replayed %d frames, want none", len(got))
				}
				return
			}
			if len(got) != int(6-tt.first+1) || got[0].ID != tt.first || got[len(got)-1].ID != 6 {
				t.Fatalf("replayed %d frames from %d, want %d..6", len(got), got[0].ID, tt.first)
			}
		})
	}
	for _, q := range []string{"after=-1", "after=abc"} {
		t.Run("Bad "+q, func(t *testing.T) {
			resp := alice.Do(t, http.MethodGet, "/v1/rooms/"+room.ID+"/events?"+q, nil)
			resp.MustProblem(t, http.StatusUnprocessableEntity)
		})
	}
	t.Run("BadHeader", func(t *testing.T) {
		_, err := alice.TryStream(room.ID, "", http.Header{"Last-Event-ID": {"x"}})
		if err == nil || !strings.Contains(err.Error(), "422") {
			t.Fatalf("got %v, want a 422", err)
		}
	})
}

// TestFrameInjection: a body that looks like SSE framing arrives as one
// intact message event.
func TestFrameInjection(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	// Both parsers: go-sse's and package api's stream reader.
	s := alice.OpenStream(t, room.ID, "", nil)
	s.UntilReady(t, wait)
	rd := e2e.Read(t, alice.API(t), room.ID, api.StreamOptions{})
	rd.UntilReady(t, wait)
	evil := "\n\nevent: x\ndata: y\r\nid: 999\r\rretry: 1\n"
	sent := alice.MustPost(t, room.ID, evil)
	after := alice.MustPost(t, room.ID, "after")
	if m := MustMessage(t, s.Next(t, wait)); m.Body != evil || m.ID != sent.ID {
		t.Fatalf("got %q, want %q", m.Body, evil)
	}
	if m := MustMessage(t, s.Next(t, wait)); m.ID != after.ID {
		t.Fatalf("next frame is %s, want the following message", m.ID)
	}
	if m := MustRead(t, rd.Next(t, wait)); m.Body != evil || m.Id != sent.ID {
		t.Fatalf("reader got %q, want %q", m.Body, evil)
	}
	if m := MustRead(t, rd.Next(t, wait)); m.Id != after.ID || rd.Stream.LastID() != fmt.Sprint(after.Seq) {
		t.Fatalf("reader's next event is %s (last id %s), want the following message", m.Id, rd.Stream.LastID())
	}
}

// TestLargeMessageInOrder: a message too big for a NOTIFY payload (4000
// four-byte characters) arrives in order among small ones, on both
// replicas.
func TestLargeMessageInOrder(t *testing.T) {
	c := e2e.NewCluster(t)
	a, b := c.MustStart(t), c.MustStart(t)
	alice := e2e.MustRegister(t, a.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	readers := []*e2e.Reader{e2e.Read(t, alice.API(t), room.ID, api.StreamOptions{}), e2e.Read(t, alice.As(b.URL).API(t), room.ID, api.StreamOptions{})}
	for _, r := range readers {
		r.UntilReady(t, wait)
	}
	big := strings.Repeat("😀", 4000)
	bodies := []string{"small 1", big, "small 2", big + "", "small 3"}
	var want []chat.Message
	for _, body := range bodies {
		want = append(want, alice.MustPost(t, room.ID, body))
	}
	for i, r := range readers {
		for j, w := range want {
			if m := MustRead(t, r.Next(t, wait)); m.Id != w.ID || m.Body != w.Body {
				t.Fatalf("reader %d event %d: got %s (%d bytes), want %s", i, j, m.Id, len(m.Body), w.ID)
			}
		}
	}
}

// TestReplayAcrossOwnRejoin: a member who once left and rejoined replays
// their own old member.left without the stream ending; only a member.left
// after they opened the stream ends it.
func TestReplayAcrossOwnRejoin(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	bob := e2e.MustRegister(t, r.URL, "bob")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	bob.MustJoin(t, room.ID) // 2
	if resp := bob.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil); resp.Status != http.StatusNoContent {
		t.Fatalf("leave: %d", resp.Status)
	} // 3
	bob.MustJoin(t, room.ID)            // 4
	alice.MustPost(t, room.ID, "hello") // 5

	rd := e2e.Read(t, bob.API(t), room.ID, api.StreamOptions{After: "0"})
	got := rd.UntilReady(t, wait)
	var types []string
	for _, ev := range got {
		types = append(types, ev.Type)
	}
	if want := "member.joined member.joined member.left member.joined message"; strings.Join(types, " ") != want {
		t.Fatalf("replayed %v, want %s", types, want)
	}
	// Live: Bob leaves again, and this member.left ends his stream.
	if resp := bob.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil); resp.Status != http.StatusNoContent {
		t.Fatalf("leave: %d", resp.Status)
	}
	// The reader tries again and is refused: Bob is no member now.
	evs, err := rd.WaitEnd(t, wait)
	if len(evs) != 1 || evs[0].Type != api.EventMemberLeft || evs[0].Seq() != 6 || api.ErrorStatus(err) != http.StatusForbidden {
		t.Fatalf("stream ended with %+v and %v, want member.left 6, then a 403", evs, err)
	}
	if left := evs[0].Payload.(*api.MemberLeft); left.UserId != bob.Session.User.ID || left.Reason != "left" {
		t.Fatalf("member.left %+v, want bob leaving", left)
	}
}
