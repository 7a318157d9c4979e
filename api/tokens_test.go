package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// refreshServer answers /v1/auth/refresh with session n+1 for refresh
// token n, once per token (a second use is a 401, as Parley answers
// reuse), holding each answer until release is closed; and /v1/me with
// 401 unless the token is the latest.
type refreshServer struct {
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
	mu      sync.Mutex
	used    map[string]bool
	latest  int
	bodies  []string
}

func newRefreshServer() *refreshServer {
	return &refreshServer{entered: make(chan struct{}, 100), release: make(chan struct{}), used: map[string]bool{}}
}

func (s *refreshServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/auth/refresh":
		s.calls.Add(1)
		s.entered <- struct{}{}
		<-s.release
		var req RefreshRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.used[req.RefreshToken] {
			problem(http.StatusUnauthorized, "")(w, r)
			return
		}
		s.used[req.RefreshToken] = true
		n, _ := strconv.Atoi(req.RefreshToken)
		s.latest = n + 1
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Session{AccessToken: "access-" + strconv.Itoa(n+1), RefreshToken: strconv.Itoa(n + 1), TokenType: "Bearer"})
	default:
		s.mu.Lock()
		ok := r.Header.Get("Authorization") == "Bearer access-"+strconv.Itoa(s.latest)
		b, _ := io.ReadAll(r.Body)
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		if !ok {
			problem(http.StatusUnauthorized, "")(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"u1","username":"alice","display_name":"Alice","created_at":"2026-11-21T09:30:00Z"}`))
	}
}

// TestSessionTokensSingleFlight: callers that got a 401 for the same token
// while a refresh runs wait for it instead of refreshing again.
func TestSessionTokensSingleFlight(t *testing.T) {
	srv := newRefreshServer()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	var refreshed []Session
	tokens := NewSessionTokens(ts.URL, Session{AccessToken: "access-0", RefreshToken: "0"}, nil, func(s Session) { refreshed = append(refreshed, s) })

	const callers = 10
	results := make(chan string, callers)
	errs := make(chan error, callers)
	call := func() {
		tok, err := tokens.Refresh(t.Context(), "access-0")
		results <- tok
		errs <- err
	}
	go call()
	<-srv.entered // the first refresh is at the server: the rest must wait for it
	for range callers - 1 {
		go call()
	}
	close(srv.release)
	for range callers {
		if tok, err := <-results, <-errs; err != nil || tok != "access-1" {
			t.Fatalf("refresh: %q %v, want access-1", tok, err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("%d refresh calls, want 1", n)
	}
	// A late caller with the replaced token gets the new one, no call.
	if tok, err := tokens.Refresh(t.Context(), "access-0"); err != nil || tok != "access-1" || srv.calls.Load() != 1 {
		t.Fatalf("late refresh: %q %v after %d calls", tok, err, srv.calls.Load())
	}
	if len(refreshed) != 1 || tokens.Session().RefreshToken != "1" {
		t.Fatalf("onRefresh saw %+v, session %+v", refreshed, tokens.Session())
	}
}

// TestClientRefreshesOn401: concurrent calls that all get a 401 share one
// refresh and are repeated, bodies included; refused calls are *Error.
func TestClientRefreshesOn401(t *testing.T) {
	srv := newRefreshServer()
	close(srv.release)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	a, err := New(ts.URL, NewSessionTokens(ts.URL, Session{AccessToken: "stale", RefreshToken: "0"}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	srv.latest = -1 // "stale" is refused
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			resp, err := a.GetMeWithResponse(t.Context())
			if err == nil && (resp.JSON200 == nil || resp.JSON200.Id != "u1") {
				err = errors.New("no user in " + string(resp.Body))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("%d refresh calls for 20 concurrent 401s, want 1", n)
	}

	// A call with a body is repeated with it.
	srv.mu.Lock()
	srv.latest, srv.bodies = -1, nil
	srv.mu.Unlock()
	if _, err := a.PostMessageWithResponse(t.Context(), "r", PostMessageRequest{Body: "hello"}); err != nil {
		t.Fatalf("post after a refresh: %v", err)
	}
	srv.mu.Lock()
	if len(srv.bodies) != 2 || srv.bodies[0] != srv.bodies[1] || srv.bodies[1] == "" {
		t.Fatalf("bodies sent %q, want the same body twice", srv.bodies)
	}
	// A session whose refresh is refused: the call's 401 comes back as
	// *Error, and the session is not tried again.
	srv.latest, srv.used["2"] = -1, true
	srv.mu.Unlock()
	_, err = a.GetMeWithResponse(t.Context())
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusUnauthorized || e.Title != "Unauthorized" || ErrorStatus(err) != 401 {
		t.Fatalf("call with a refused session: %v, want the 401 as *Error", err)
	}
	calls := srv.calls.Load()
	if _, err := a.Tokens().Refresh(t.Context(), "access-2"); ErrorStatus(err) != http.StatusUnauthorized || srv.calls.Load() != calls {
		t.Fatalf("refresh of a dead session: %v after %d calls, want its 401 and no call", err, srv.calls.Load()-calls)
	}
}
