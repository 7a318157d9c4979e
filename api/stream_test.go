package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingTokens hands out tok-0, then tok-1 after the first refresh, and
// so on, and counts the refreshes.
type countingTokens struct {
	mu  sync.Mutex
	n   int
	err error
}

func (c *countingTokens) Token(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "tok-" + strconv.Itoa(c.n), nil
}

func (c *countingTokens) Refresh(_ context.Context, rejected string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return "", c.err
	}
	if rejected == "tok-"+strconv.Itoa(c.n) {
		c.n++
	}
	return "tok-" + strconv.Itoa(c.n), nil
}

// scripted is a stream server whose every connection runs the next step.
type scripted struct {
	t     *testing.T
	mu    sync.Mutex
	steps []func(w http.ResponseWriter, r *http.Request)
	seen  []*http.Request
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := len(s.seen)
	s.seen = append(s.seen, r)
	s.mu.Unlock()
	if i >= len(s.steps) {
		http.Error(w, "no more steps", http.StatusGone)
		return
	}
	s.steps[i](w, r)
}

func (s *scripted) request(i int) *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[i]
}

func sse(frames string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, frames)
	}
}

func problem(status int, retryAfter string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"title":%q,"status":%d,"detail":"scripted"}`, http.StatusText(status), status)
	}
}

func mustAPI(t *testing.T, url string, tokens TokenSource) *API {
	t.Helper()
	a, err := New(url, tokens)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type reconnect struct {
	err  error
	wait time.Duration
}

// collect reads the stream to its end.
func collect(ctx context.Context, s *Stream) ([]Event, error) {
	var evs []Event
	for ev, err := range s.Events(ctx) {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// TestStreamResume: the reader resumes after the last id with
// Last-Event-ID, takes the position of ready, waits a 503's Retry-After,
// refreshes after a 401 and after reauth, and stops on a 403 with the
// problem as an *Error.
func TestStreamResume(t *testing.T) {
	srv := &scripted{t: t}
	srv.steps = []func(http.ResponseWriter, *http.Request){
		sse("retry: 10\n\nid: 1\nevent: member.joined\ndata: {\"seq\":1}\n\nid: 2\nevent: message\ndata: {\"seq\":2,\"body\":\"hi\"}\n\n"),
		problem(http.StatusServiceUnavailable, "1"),
		sse("event: ready\ndata: {\"room_id\":\"r\",\"last_seq\":5}\n\nevent: typing\ndata: {\"room_id\":\"r\",\"user_id\":\"u\"}\n\n"),
		problem(http.StatusUnauthorized, ""),
		sse("id: 6\ndata: {\"seq\":6}\n\nevent: something.new\ndata: {}\n\nevent: reauth\ndata: {\"reason\":\"token_expired\"}\n\n"),
		problem(http.StatusForbidden, ""),
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tokens := &countingTokens{}
	var reconnects []reconnect
	s := mustAPI(t, ts.URL, tokens).RoomStream("r", StreamOptions{After: "0", OnReconnect: func(err error, wait time.Duration) {
		reconnects = append(reconnects, reconnect{err, wait})
	}})
	evs, err := collect(t.Context(), s)

	var e *Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusForbidden || e.Title != "Forbidden" || e.Detail != "scripted" {
		t.Fatalf("ended with %v, want the 403 problem", err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type+"/"+ev.ID)
	}
	if got, want := fmt.Sprint(types), "[member.joined/1 message/2 ready/ typing/ message/6 something.new/ reauth/]"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if m, ok := evs[1].Payload.(*Message); !ok || m.Body != "hi" || evs[1].Seq() != 2 {
		t.Fatalf("message payload %#v", evs[1].Payload)
	}
	if evs[5].Payload != nil {
		t.Fatalf("unknown type decoded to %#v", evs[5].Payload)
	}
	wantHeaders := []struct{ lastID, auth string }{
		{"0", "Bearer tok-0"}, {"2", "Bearer tok-0"}, {"2", "Bearer tok-0"},
		{"5", "Bearer tok-0"}, {"5", "Bearer tok-1"}, {"6", "Bearer tok-2"},
	}
	for i, w := range wantHeaders {
		r := srv.request(i)
		if r.Header.Get("Last-Event-ID") != w.lastID || r.Header.Get("Authorization") != w.auth || r.Header.Get("Accept") != "text/event-stream" {
			t.Fatalf("request %d: Last-Event-ID %q, Authorization %q; want %q, %q", i, r.Header.Get("Last-Event-ID"), r.Header.Get("Authorization"), w.lastID, w.auth)
		}
	}
	if s.LastID() != "6" {
		t.Fatalf("last id %q, want 6", s.LastID())
	}
	if len(reconnects) != 5 {
		t.Fatalf("reconnects %+v, want 5", reconnects)
	}
	if !errors.Is(reconnects[0].err, ErrStreamEnded) || reconnects[0].wait > 10*time.Millisecond {
		t.Fatalf("first reconnect %+v: want ErrStreamEnded within retry: 10ms", reconnects[0])
	}
	if ErrorStatus(reconnects[1].err) != http.StatusServiceUnavailable || reconnects[1].wait < time.Second {
		t.Fatalf("reconnect after 503 %+v: want a wait of its Retry-After, 1s", reconnects[1])
	}
	if ErrorStatus(reconnects[3].err) != http.StatusUnauthorized || reconnects[3].wait != 0 {
		t.Fatalf("reconnect after 401 %+v: want at once", reconnects[3])
	}
	if !errors.Is(reconnects[4].err, ErrReauth) || reconnects[4].wait != 0 {
		t.Fatalf("reconnect after reauth %+v: want at once", reconnects[4])
	}
}

// TestStreamStops: the statuses and events after which reading stops.
func TestStreamStops(t *testing.T) {
	tests := []struct {
		name   string
		step   func(http.ResponseWriter, *http.Request)
		user   bool
		status int // of the final *Error; 0: ends without an error
		events int
	}{
		{"NotFound", problem(http.StatusNotFound, ""), false, http.StatusNotFound, 0},
		{"Unprocessable", problem(http.StatusUnprocessableEntity, ""), false, http.StatusUnprocessableEntity, 0},
		{"Forbidden", problem(http.StatusForbidden, ""), true, http.StatusForbidden, 0},
		{"RoomDeleted", sse("id: 3\nevent: room.deleted\ndata: {\"room_id\":\"r\",\"seq\":3}\n\n"), false, 0, 1},
		{"BadFrame", sse("id: 3\nevent: message\ndata: {\"seq\":\"three\"}\n\n"), false, -1, 0},
		{"NotAStream", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "{}") }, false, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{t: t, steps: []func(http.ResponseWriter, *http.Request){tt.step}}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			a := mustAPI(t, ts.URL, StaticToken("t"))
			s := a.RoomStream("r", StreamOptions{})
			if tt.user {
				s = a.UserStream(StreamOptions{})
			}
			evs, err := collect(t.Context(), s)
			switch {
			case tt.status > 0 && ErrorStatus(err) != tt.status:
				t.Fatalf("ended with %v, want %d", err, tt.status)
			case tt.status == 0 && err != nil:
				t.Fatalf("ended with %v, want no error", err)
			case tt.status < 0 && (err == nil || ErrorStatus(err) != 0):
				t.Fatalf("ended with %v, want a non-HTTP error", err)
			}
			if len(evs) != tt.events {
				t.Fatalf("%d events, want %d", len(evs), tt.events)
			}
		})
	}
	t.Run("UnrefreshableToken", func(t *testing.T) {
		srv := &scripted{t: t, steps: []func(http.ResponseWriter, *http.Request){problem(http.StatusUnauthorized, "")}}
		ts := httptest.NewServer(srv)
		defer ts.Close()
		_, err := collect(t.Context(), mustAPI(t, ts.URL, StaticToken("t")).RoomStream("r", StreamOptions{}))
		if !errors.Is(err, ErrNoRefresh) {
			t.Fatalf("ended with %v, want ErrNoRefresh", err)
		}
	})
}

// TestStreamContextEnds: a reader blocked on a silent stream, or waiting
// to reconnect, returns when its context ends and leaves no goroutine.
func TestStreamContextEnds(t *testing.T) {
	var unavailable atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unavailable.Load() {
			problem(http.StatusServiceUnavailable, "3600")(w, r) // a long wait
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: ready\ndata: {\"last_seq\":1}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	before := runtime.NumGoroutine()
	for _, name := range []string{"Reading", "Waiting"} {
		t.Run(name, func(t *testing.T) {
			unavailable.Store(name == "Waiting")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			waiting := make(chan struct{}, 1)
			s := mustAPI(t, ts.URL, StaticToken("t")).RoomStream("r", StreamOptions{
				OnReconnect: func(error, time.Duration) { waiting <- struct{}{} },
			})
			done := make(chan error, 1)
			got := make(chan Event, 1)
			go func() {
				for ev, err := range s.Events(ctx) {
					if err != nil {
						done <- err
						return
					}
					got <- ev
				}
				done <- nil
			}()
			if name == "Waiting" {
				<-waiting
			} else if ev := <-got; ev.Type != EventReady {
				t.Fatalf("got %+v, want ready", ev)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ended with %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the reader did not return after its context ended")
			}
		})
	}
	ts.CloseClientConnections()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // goroutines end on their own time
	}
}

// TestStreamIdle: a connection that goes silent past IdleTimeout is
// dropped and resumed.
func TestStreamIdle(t *testing.T) {
	srv := &scripted{t: t}
	silent := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: 4\ndata: {\"seq\":4}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	srv.steps = []func(http.ResponseWriter, *http.Request){silent, problem(http.StatusNotFound, "")}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var why []error
	s := mustAPI(t, ts.URL, StaticToken("t")).RoomStream("r", StreamOptions{IdleTimeout: 100 * time.Millisecond, MinBackoff: time.Millisecond,
		OnReconnect: func(err error, _ time.Duration) { why = append(why, err) }})
	evs, err := collect(t.Context(), s)
	if len(evs) != 1 || ErrorStatus(err) != http.StatusNotFound || len(why) != 1 || !errors.Is(why[0], ErrIdle) {
		t.Fatalf("events %d, end %v, reconnects %v: want 1, 404, [ErrIdle]", len(evs), err, why)
	}
	if got := srv.request(1).Header.Get("Last-Event-ID"); got != "4" {
		t.Fatalf("resumed with Last-Event-ID %q, want 4", got)
	}
}
