package client

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/api"
	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

const wait = 20 * time.Second

// MustRegister registers username through package api.
func MustRegister(tb testing.TB, base, username string, opts ...api.ClientOption) *api.API {
	tb.Helper()
	a, err := api.Register(tb.Context(), base, api.RegisterRequest{Username: username, Password: "password-" + username}, opts...)
	if err != nil {
		tb.Fatalf("register %s: %v", username, err)
	}
	return a
}

// MustRoom creates a public room through a.
func MustRoom(tb testing.TB, a *api.API, name string) api.Room {
	tb.Helper()
	resp, err := a.CreateRoomWithResponse(tb.Context(), api.CreateRoomRequest{Name: name, Visibility: api.CreateRoomRequestVisibilityPublic})
	if err != nil {
		tb.Fatalf("create room: %v", err)
	}
	return *resp.JSON201
}

// MustPost posts body to room through a.
func MustPost(tb testing.TB, a *api.API, roomID, body string) api.Message {
	tb.Helper()
	resp, err := a.PostMessageWithResponse(tb.Context(), roomID, api.PostMessageRequest{Body: body})
	if err != nil {
		tb.Fatalf("post: %v", err)
	}
	return *resp.JSON201
}

// TestProblems: refused calls come back as one error type carrying the
// problem body, whatever the status.
func TestProblems(t *testing.T) {
	r := e2e.NewCluster(t).MustStart(t)
	alice := MustRegister(t, r.URL, "alice")
	_, err := api.Register(t.Context(), r.URL, api.RegisterRequest{Username: "ALICE", Password: "password-alice"})
	var e *api.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusConflict || e.Status != http.StatusConflict || e.Title == "" {
		t.Fatalf("duplicate register: %v, want a 409 *api.Error", err)
	}
	room := MustRoom(t, alice, "general")
	_, err = alice.PostMessageWithResponse(t.Context(), room.Id, api.PostMessageRequest{Body: "  "})
	if !errors.As(err, &e) || e.StatusCode != http.StatusUnprocessableEntity || len(e.Errors) == 0 || e.Errors[0].Location == nil {
		t.Fatalf("blank post: %v, want a 422 with errors", err)
	}
	_, err = alice.GetRoomWithResponse(t.Context(), "00000000-0000-0000-0000-000000000000")
	if api.ErrorStatus(err) != http.StatusNotFound {
		t.Fatalf("unknown room: %v, want 404", err)
	}
	if _, err := api.Login(t.Context(), r.URL, "alice", "wrong password"); api.ErrorStatus(err) != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v, want 401", err)
	}
	// Ids go from one call to the next as they are.
	msg := MustPost(t, alice, room.Id, "hello")
	got, err := alice.GetMessageWithResponse(t.Context(), msg.RoomId, msg.Id)
	if err != nil || got.JSON200.Author.Id != msg.Author.Id {
		t.Fatalf("get message: %v", err)
	}
}

// TestConcurrentRefresh: after the access token expires, many calls at
// once get a 401 and share one refresh. Had any refreshed on its own, the
// server would have taken the second use of the refresh token for reuse
// and revoked the session; it still works, and refreshes once more.
func TestConcurrentRefresh(t *testing.T) {
	r := e2e.NewCluster(t, "PARLEY_ACCESS_TTL=2s").MustStart(t)
	var mu sync.Mutex
	var refreshes []api.Session
	anon, err := api.New(r.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := anon.RegisterWithResponse(t.Context(), api.RegisterRequest{Username: "alice", Password: "password-alice"})
	if err != nil {
		t.Fatal(err)
	}
	tokens := api.NewSessionTokens(r.URL, *reg.JSON201, nil, func(s api.Session) {
		mu.Lock()
		refreshes = append(refreshes, s)
		mu.Unlock()
	})
	alice, err := api.New(r.URL, tokens)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		time.Sleep(2100 * time.Millisecond) // let the access token expire
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				resp, err := alice.GetMeWithResponse(t.Context())
				if err == nil && resp.JSON200.Username != "alice" {
					err = fmt.Errorf("me: %s", resp.Body)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		mu.Lock()
		n := len(refreshes)
		mu.Unlock()
		if n != round {
			t.Fatalf("round %d: %d refreshes in all, want %d", round, n, round)
		}
	}
}

// TestRoomReader: the reader replays, goes live, refreshes its token on
// reauth and resumes with Last-Event-ID without a gap while posts go on,
// and ends without an error after room.deleted.
func TestRoomReader(t *testing.T) {
	r := e2e.NewCluster(t, "PARLEY_ACCESS_TTL=3s").MustStart(t)
	alice := MustRegister(t, r.URL, "alice")
	room := MustRoom(t, alice, "general")
	first := MustPost(t, alice, room.Id, "before")
	rd := e2e.Read(t, alice, room.Id, api.StreamOptions{After: "0"})
	replayed := rd.UntilReady(t, wait)
	if len(replayed) != 2 || replayed[0].Type != api.EventMemberJoined || replayed[1].Payload.(*api.Message).Id != first.Id {
		t.Fatalf("replayed %+v, want member.joined and the message", replayed)
	}
	// Post through the token's expiry: the reader sees reauth, refreshes,
	// reconnects and misses nothing.
	poster := MustRegister(t, r.URL, "bob")
	if _, err := poster.JoinRoomWithResponse(t.Context(), room.Id); err != nil {
		t.Fatal(err)
	}
	var posted []string
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		posted = append(posted, MustPost(t, poster, room.Id, fmt.Sprintf("m%d", len(posted))).Id)
		time.Sleep(50 * time.Millisecond) // spread the posts over the expiry
	}
	if ev := rd.Next(t, wait); ev.Type != api.EventMemberJoined {
		t.Fatalf("got %+v, want bob's member.joined", ev)
	}
	var got []string
	sawReauth := false
	for len(got) < len(posted) {
		ev := rd.Next(t, wait)
		switch ev.Type {
		case api.EventMessage:
			got = append(got, ev.Payload.(*api.Message).Id)
		case api.EventReauth:
			sawReauth = true
		case api.EventReady:
		default:
			t.Fatalf("unexpected %+v", ev)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(posted) {
		t.Fatalf("read %d messages, posted %d: %v vs %v", len(got), len(posted), got, posted)
	}
	if !sawReauth || !errors.Is(rd.NextReconnect(t, wait), api.ErrReauth) {
		t.Fatal("the token did not expire during the test")
	}
	if s, _ := alice.Session(); s.AccessToken == "" || rd.Stream.LastID() == "" {
		t.Fatalf("session %+v, last id %q", s, rd.Stream.LastID())
	}
	if _, err := alice.DeleteRoomWithResponse(t.Context(), room.Id); err != nil {
		t.Fatal(err)
	}
	evs, err := rd.WaitEnd(t, wait)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Type != api.EventRoomDeleted {
		t.Fatalf("ended with %v after %+v, want no error after room.deleted", err, evs)
	}
}

// TestReaderStops: the reader stops with the problem on 403 (it left a
// public room), 404 (removed from a private one) and 422 (a bad cursor).
func TestReaderStops(t *testing.T) {
	r := e2e.NewCluster(t).MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	bob := e2e.MustRegister(t, r.URL, "bob")
	public := alice.MustCreateRoom(t, "public", chat.Public)
	private := alice.MustCreateRoom(t, "private", chat.Private)
	bob.MustJoin(t, public.ID)
	if resp := alice.Do(t, http.MethodPut, "/v1/rooms/"+private.ID+"/members/"+bob.Session.User.ID, nil); resp.Status != http.StatusOK {
		t.Fatalf("add bob: %d %s", resp.Status, resp.Body)
	}
	bobAPI := bob.API(t)
	tests := []struct {
		name  string
		room  string
		after string
		end   func()
		want  int
	}{
		{"Left", public.ID, "", func() { bob.Do(t, http.MethodPost, "/v1/rooms/"+public.ID+"/leave", nil) }, http.StatusForbidden},
		{"Removed", private.ID, "", func() { alice.Do(t, http.MethodDelete, "/v1/rooms/"+private.ID+"/members/"+bob.Session.User.ID, nil) }, http.StatusNotFound},
		{"BadCursor", public.ID, "abc", nil, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := e2e.Read(t, bobAPI, tt.room, api.StreamOptions{After: tt.after, MinBackoff: 10 * time.Millisecond})
			if tt.end != nil {
				rd.UntilReady(t, wait)
				tt.end()
			}
			evs, err := rd.WaitEnd(t, wait)
			var e *api.Error
			if !errors.As(err, &e) || e.StatusCode != tt.want || e.Title == "" {
				t.Fatalf("ended with %v, want a %d problem", err, tt.want)
			}
			if tt.end != nil && (len(evs) != 1 || evs[0].Type != api.EventMemberLeft) {
				t.Fatalf("read %+v before the end, want bob's member.left", evs)
			}
		})
	}
}

// TestReaderLimits: a reader refused for the stream caps (429 per user,
// 503 per replica) waits the answer's Retry-After and gets in once a
// stream closes.
func TestReaderLimits(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want int
	}{
		{"PerUser", "PARLEY_STREAMS_PER_USER=1", http.StatusTooManyRequests},
		{"PerReplica", "PARLEY_MAX_STREAMS=1", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e2e.NewCluster(t, tt.env).MustStart(t)
			alice := e2e.MustRegister(t, r.URL, "alice")
			room := alice.MustCreateRoom(t, "general", chat.Public)
			held := alice.OpenStream(t, room.ID, "", nil)
			held.UntilReady(t, wait)
			rd := e2e.Read(t, alice.API(t), room.ID, api.StreamOptions{MinBackoff: 10 * time.Millisecond})
			err := rd.NextReconnect(t, wait)
			var e *api.Error
			if !errors.As(err, &e) || e.StatusCode != tt.want || e.RetryAfter < time.Second {
				t.Fatalf("refused with %v, want %d with a Retry-After", err, tt.want)
			}
			refused := time.Now()
			held.Close()
			rd.UntilReady(t, wait)
			if took := time.Since(refused); took < e.RetryAfter-100*time.Millisecond {
				t.Fatalf("reconnected %s after the refusal, before its Retry-After of %s", took, e.RetryAfter)
			}
		})
	}
}

// TestUserReaderFailover: a user stream reader behind a load balancer
// keeps reading across a replica's shutdown, resuming on the other
// replica with its last cursor, and misses nothing from either room.
func TestUserReaderFailover(t *testing.T) {
	c := e2e.NewCluster(t)
	a, b := c.MustStart(t), c.MustStart(t)
	lb := e2e.NewBalancer(a, b)
	alice := MustRegister(t, lb.URL(), "alice", api.WithHTTPClient(lb.Client()))
	rooms := []api.Room{MustRoom(t, alice, "one"), MustRoom(t, alice, "two")}
	rd := e2e.Read(t, alice, "", api.StreamOptions{MinBackoff: 10 * time.Millisecond})
	if got := rd.UntilReady(t, wait); len(got) != 0 {
		t.Fatalf("a live start replayed %+v", got)
	}
	want := map[string]bool{}
	post := func(body string) {
		for _, room := range rooms {
			want[MustPost(t, alice, room.Id, body).Id] = true
		}
	}
	post("before")
	for range 2 {
		if ev := rd.Next(t, wait); ev.Type != api.EventMessage || !want[ev.Payload.(*api.Message).Id] {
			t.Fatalf("got %+v, want a message posted", ev)
		}
	}
	clear(want)
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-a.Exited()
	post("while away")
	post("after")
	for len(want) > 0 {
		ev := rd.Next(t, wait)
		switch ev.Type {
		case api.EventMessage:
			m := ev.Payload.(*api.Message)
			if !want[m.Id] {
				t.Fatalf("got %s (%q) again or unasked", m.Id, m.Body)
			}
			delete(want, m.Id)
		case api.EventReady:
		default:
			t.Fatalf("unexpected %+v", ev)
		}
	}
	if err := rd.NextReconnect(t, wait); !errors.Is(err, api.ErrStreamEnded) {
		t.Fatalf("reconnected for %v, want the end of the stream", err)
	}
}

// TestReaderTypedEvents: every durable event type arrives typed through
// the reader, live and in a replay, with its id as its seq.
func TestReaderTypedEvents(t *testing.T) {
	r := e2e.NewCluster(t).MustStart(t)
	alice := MustRegister(t, r.URL, "alice")
	room := MustRoom(t, alice, "general")
	rd := e2e.Read(t, alice, room.Id, api.StreamOptions{})
	rd.UntilReady(t, wait)
	ctx := t.Context()
	msg := MustPost(t, alice, room.Id, "hello")
	steps := []func() error{
		func() error {
			_, err := alice.EditMessageWithResponse(ctx, room.Id, msg.Id, api.EditMessageRequest{Body: "hello!"})
			return err
		},
		func() error { _, err := alice.AddReactionWithResponse(ctx, room.Id, msg.Id, "👍"); return err },
		func() error { _, err := alice.RemoveReactionWithResponse(ctx, room.Id, msg.Id, "👍"); return err },
		func() error { _, err := alice.DeleteMessageWithResponse(ctx, room.Id, msg.Id); return err },
		func() error {
			topic := "news"
			_, err := alice.UpdateRoomWithResponse(ctx, room.Id, api.UpdateRoomRequest{Topic: &topic})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// live: the events as they happened; a replay comes after the delete,
	// which erased the text from the log.
	check := func(t *testing.T, evs []api.Event, live bool) {
		t.Helper()
		var got []string
		for _, ev := range evs {
			var seq int64
			switch p := ev.Payload.(type) {
			case *api.Message:
				seq = p.Seq
			case *api.MessageEdited:
				seq = p.Seq
				if live && p.Message.Body != "hello!" || !live && (p.Message.Body != "" || p.Message.DeletedAt == nil) {
					t.Fatalf("edited (live %v) %+v", live, p)
				}
			case *api.ReactionAdded:
				seq = p.Seq
				if p.Key != "👍" || p.Count != 1 || p.MessageId != msg.Id {
					t.Fatalf("reaction.added %+v", p)
				}
			case *api.ReactionRemoved:
				seq = p.Seq
			case *api.MessageDeleted:
				seq = p.Seq
			case *api.RoomUpdated:
				seq = p.Seq
				if p.Topic != "news" {
					t.Fatalf("room.updated %+v", p)
				}
			default:
				t.Fatalf("event %s with payload %T", ev.Type, ev.Payload)
			}
			if seq != ev.Seq() {
				t.Fatalf("%s: id %q, data seq %d", ev.Type, ev.ID, seq)
			}
			got = append(got, ev.Type)
		}
		if want := "[message message.edited reaction.added reaction.removed message.deleted room.updated]"; fmt.Sprint(got) != want {
			t.Fatalf("events %v, want %s", got, want)
		}
	}
	var live []api.Event
	for range 6 {
		live = append(live, rd.Next(t, wait))
	}
	check(t, live, true)
	replay := e2e.Read(t, alice, room.Id, api.StreamOptions{After: fmt.Sprint(msg.Seq - 1)})
	check(t, replay.UntilReady(t, wait), false)
}

// TestReaderEphemeral: typing, member.read and presence arrive typed
// through the reader, without an id, and leave its position alone.
func TestReaderEphemeral(t *testing.T) {
	r := e2e.NewCluster(t).MustStart(t)
	alice := MustRegister(t, r.URL, "alice")
	bob := MustRegister(t, r.URL, "bob")
	room := MustRoom(t, alice, "general")
	if _, err := bob.JoinRoomWithResponse(t.Context(), room.Id); err != nil {
		t.Fatal(err)
	}
	rd := e2e.Read(t, alice, "", api.StreamOptions{})
	rd.UntilReady(t, wait)
	pos := rd.Stream.LastID()
	bobSession, _ := bob.Session()
	bobRd := e2e.Read(t, bob, room.Id, api.StreamOptions{}) // bob comes online
	bobRd.UntilReady(t, wait)
	msg := MustPost(t, alice, room.Id, "hello") // bob's own post would move his marker silently
	if _, err := bob.SendTypingWithResponse(t.Context(), room.Id); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.MarkReadWithResponse(t.Context(), room.Id, api.MarkReadRequest{Seq: msg.Seq}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	timeout := time.After(wait)
	for len(seen) < 3 {
		var ev api.Event
		select {
		case ev = <-rd.Signals:
		case <-timeout:
			t.Fatalf("signals seen %v after %s, want typing, member.read and presence", seen, wait)
		}
		ok := false
		switch p := ev.Payload.(type) {
		case *api.Presence:
			ok = p.UserId == bobSession.User.Id && p.Online
		case *api.Typing:
			ok = p.UserId == bobSession.User.Id && p.RoomId == room.Id
		case *api.MemberRead:
			ok = p.UserId == bobSession.User.Id && p.LastReadSeq == msg.Seq
		}
		if !ok || ev.ID != "" || ev.Durable() {
			t.Fatalf("%s: %+v (id %q), want bob's, without an id", ev.Type, ev.Payload, ev.ID)
		}
		seen[ev.Type] = true
	}
	// The durable message came through Events, and only it moved the
	// reader's position.
	if m := rd.Next(t, wait); m.Type != api.EventMessage || rd.Stream.LastID() == pos || rd.Stream.LastID() != m.ID {
		t.Fatalf("got %+v, position %q (was %q), want the message as the position", m, rd.Stream.LastID(), pos)
	}
}
