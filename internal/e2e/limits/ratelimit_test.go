package limits

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// MustRetryAfter checks resp is a problem with status want and a
// Retry-After of whole seconds >= 1, and returns it.
func MustRetryAfter(tb testing.TB, resp *e2e.Response, want int) time.Duration {
	tb.Helper()
	resp.MustProblem(tb, want)
	s := resp.Header.Get("Retry-After")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%d with Retry-After %q, want whole seconds >= 1", want, s)
	}
	return time.Duration(n) * time.Second
}

// MustCount counts rows with a query.
func MustCount(tb testing.TB, url, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := e2e.MustConnect(tb, url).QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func post(c *e2e.Client, roomID, body, clientID string) (*e2e.Response, error) {
	m := map[string]string{"body": body}
	if clientID != "" {
		m["client_id"] = clientID
	}
	return c.Try(http.MethodPost, "/v1/rooms/"+roomID+"/messages", m)
}

// TestPostLimitAcrossReplicas: one user posting as fast as it can through
// two replicas gets the burst plus the rate, no more; each refusal is a
// 429 with Retry-After that stores nothing; after waiting Retry-After the
// next post goes through.
func TestPostLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r1, r2 := c.MustStart(t), c.MustStart(t)
	alice := e2e.MustRegister(t, r1.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	clients := []*e2e.Client{alice, alice.As(r2.URL)}

	start := time.Now()
	accepted, refused := 0, 0
	var last *e2e.Response
	for i := range 60 {
		resp, err := post(clients[i%2], room.ID, fmt.Sprintf("m%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		switch resp.Status {
		case http.StatusCreated:
			accepted++
		case http.StatusTooManyRequests:
			refused++
			last = resp
			MustRetryAfter(t, resp, http.StatusTooManyRequests)
		default:
			t.Fatalf("post %d: %d %s", i, resp.Status, resp.Body)
		}
	}
	elapsed := time.Since(start)
	// The bucket starts full (20) and refills at 10/s while we post.
	if most := 20 + int(10*elapsed.Seconds()) + 1; accepted < 20 || accepted > most {
		t.Fatalf("accepted %d posts in %s, want 20 to %d", accepted, elapsed, most)
	}
	if refused == 0 {
		t.Fatalf("no post refused in %s", elapsed)
	}
	if n := MustCount(t, c.DatabaseURL, `SELECT count(*) FROM room_events WHERE type = 'message'`); n != accepted {
		t.Fatalf("%d messages stored, %d accepted", n, accepted)
	}
	t.Logf("accepted %d, refused %d in %s", accepted, refused, elapsed)
	time.Sleep(MustRetryAfter(t, last, http.StatusTooManyRequests)) // as the client was told
	for _, cl := range clients {
		// The first after the wait goes through on either replica.
		resp, err := post(cl, room.ID, "after the wait", "")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusCreated {
			t.Fatalf("post after Retry-After: %d %s", resp.Status, resp.Body)
		}
		break
	}
}

// TestRefusedPostsCost: refused posts count against the limit, so a client
// hammering without waiting stays refused, while a repeat of an accepted
// client_id is free: it answers 200 with the stored message even then.
func TestRefusedPostsCost(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_POST_RATE=1", "PARLEY_POST_BURST=2")
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	first, err := post(alice, room.ID, "first", "c-1")
	if err != nil || first.Status != http.StatusCreated {
		t.Fatalf("first post: %v %v", first, err)
	}
	var m chat.Message
	first.JSON(t, &m)
	if resp, _ := post(alice, room.ID, "second", ""); resp.Status != http.StatusCreated {
		t.Fatalf("second post: %d %s", resp.Status, resp.Body)
	}
	// Refused posts 0.4 s apart: at 1/s without the charge for refusals
	// the third would get through.
	for i := range 4 {
		resp, err := post(alice, room.ID, "hammer", "")
		if err != nil {
			t.Fatal(err)
		}
		MustRetryAfter(t, resp, http.StatusTooManyRequests)
		time.Sleep(400 * time.Millisecond)
		_ = i
	}
	t.Run("RepeatIsFree", func(t *testing.T) {
		for range 5 {
			resp, err := post(alice, room.ID, "first", "c-1")
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusOK {
				t.Fatalf("repeat of an accepted client_id: %d %s", resp.Status, resp.Body)
			}
			var got chat.Message
			resp.JSON(t, &got)
			if got.ID != m.ID || got.Seq != m.Seq {
				t.Fatalf("repeat answered %+v, want %+v", got, m)
			}
		}
	})
	if n := MustCount(t, c.DatabaseURL, `SELECT count(*) FROM room_events WHERE type = 'message'`); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
}

// TestRefusedPostSkipsRoomLock: a refused post answers 429 at once even
// while another transaction holds the room's lock, which an accepted post
// would wait for.
func TestRefusedPostSkipsRoomLock(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_POST_RATE=0.01", "PARLEY_POST_BURST=1")
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	alice.MustPost(t, room.ID, "the one post of the burst")

	conn := e2e.MustConnect(t, c.DatabaseURL)
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT id FROM rooms WHERE id = $1 FOR UPDATE`, room.ID); err != nil {
		t.Fatal(err)
	}
	// The lock stays held until the test ends; a post waiting for it
	// would run into the client's timeout instead of answering.
	hc := &http.Client{Timeout: 10 * time.Second}
	cl := *alice
	cl.HTTP = hc
	resp, err := post(&cl, room.ID, "refused", "")
	if err != nil {
		t.Fatalf("refused post waited for the room lock: %v", err)
	}
	MustRetryAfter(t, resp, http.StatusTooManyRequests)
	var waiting int
	if err := e2e.MustConnect(t, c.DatabaseURL).QueryRow(ctx,
		`SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	if waiting != 0 {
		t.Fatalf("%d sessions wait for a lock after the refusal", waiting)
	}
	if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
}

// login tries a login, optionally through a claimed X-Forwarded-For.
func login(base, username, password, xff string) (*e2e.Response, error) {
	c := &e2e.Client{Base: base, HTTP: &http.Client{Transport: xffTransport(xff)}}
	return c.Try(http.MethodPost, "/v1/auth/login", map[string]string{"username": username, "password": password})
}

// xffTransport adds an X-Forwarded-For header to every request.
type xffTransport string

func (x xffTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if x != "" {
		req = req.Clone(req.Context())
		req.Header.Set("X-Forwarded-For", string(x))
	}
	return http.DefaultTransport.RoundTrip(req)
}

// concurrentLogins sends n logins at once and counts the answers.
func concurrentLogins(t *testing.T, bases []string, n int, username, password, xff string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	counts := map[int]int{}
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			resp, err := login(bases[i%len(bases)], username, password, xff)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			counts[resp.Status]++
			if resp.Status == http.StatusTooManyRequests {
				MustRetryAfter(t, resp, http.StatusTooManyRequests)
			}
		}()
	}
	close(gate)
	wg.Wait()
	return counts
}

// TestLoginLimits: failed logins per username and client IP, across
// replicas, reserved before hashing so concurrent guesses cannot all slip
// through; unknown usernames counted alike; the right password refused
// until the window passes; a spoofed X-Forwarded-For changes nothing.
func TestLoginLimits(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, append(e2e.DefaultLimits, "PARLEY_LOGIN_WINDOW=15s")...)
	// Without -race hashes are quick enough that few logins wait for a
	// hashing slot past 5 s (a 503, which counts nothing).
	r1, r2 := c.MustStartBinary(t, e2e.PlainBinary(t)), c.MustStartBinary(t, e2e.PlainBinary(t))
	bases := []string{r1.URL, r2.URL}
	e2e.MustRegister(t, r1.URL, "alice")
	// failures sums a username's counters (per username, per address).
	failures := func(username string) int {
		return MustCount(t, c.DatabaseURL, `SELECT COALESCE(sum(failures), 0)::int FROM login_failures
			WHERE key = 'u ' || $1 OR key LIKE 'ip % ' || $1`, username)
	}

	var wait time.Duration
	for _, tt := range []struct{ name, username, password string }{
		{"Known", "alice", "password-alice"},
		{"Unknown", "nobody", "password-nobody"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			counts := concurrentLogins(t, bases, 30, tt.username, "wrong-password", "")
			// Ten were reserved: each failed (401) or was not decided
			// (503, reservation taken back). No more slipped through.
			if counts[http.StatusUnauthorized]+counts[http.StatusServiceUnavailable] != 10 || counts[http.StatusTooManyRequests] != 20 {
				t.Fatalf("answers %v, want 10 401s (or 503s) and 20 429s", counts)
			}
			mustFillWindow(t, bases[1], tt.username, 10-counts[http.StatusUnauthorized])
			before := failures(tt.username)
			// Claimed addresses are not believed from an untrusted peer.
			for i := range 3 {
				resp, err := login(bases[i%2], tt.username, "wrong-password", fmt.Sprintf("198.51.100.%d", i))
				if err != nil {
					t.Fatal(err)
				}
				MustRetryAfter(t, resp, http.StatusTooManyRequests)
			}
			resp, err := login(bases[0], tt.username, tt.password, "")
			if err != nil {
				t.Fatal(err)
			}
			wait = MustRetryAfter(t, resp, http.StatusTooManyRequests) // even the right password
			if after := failures(tt.username); after != before || before != 20 {
				t.Fatalf("counts %d before refused logins, %d after, want 20 (10 per counter) both times", before, after)
			}
		})
	}
	time.Sleep(wait) // as the client was told; alice's window ended earlier
	if resp, err := login(r2.URL, "alice", "password-alice", ""); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("login after Retry-After: %v %v", resp, err)
	}
	// A success is not a failure: the new window has room for 10.
	counts := concurrentLogins(t, bases, 12, "alice", "wrong-password", "")
	if counts[http.StatusUnauthorized]+counts[http.StatusServiceUnavailable] != 10 || counts[http.StatusTooManyRequests] != 2 {
		t.Fatalf("after the window: answers %v, want 10 401s (or 503s) and 2 429s", counts)
	}
}

// mustFillWindow sends wrong logins one at a time until n more have failed
// (401), retrying the 503s of a busy replica after their Retry-After.
func mustFillWindow(t *testing.T, base, username string, n int) {
	t.Helper()
	for n > 0 {
		resp, err := login(base, username, "wrong-password", "")
		if err != nil {
			t.Fatal(err)
		}
		switch resp.Status {
		case http.StatusUnauthorized:
			n--
		case http.StatusServiceUnavailable:
			time.Sleep(MustRetryAfter(t, resp, http.StatusServiceUnavailable))
		default:
			t.Fatalf("filling the window: %d %s", resp.Status, resp.Body)
		}
	}
}

// TestLoginLimitPerUser: behind a trusted proxy each client address has
// its own count, and all addresses together meet the looser per-username
// cap.
func TestLoginLimitPerUser(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, append(e2e.DefaultLimits,
		"PARLEY_LOGIN_FAILURES=3", "PARLEY_LOGIN_FAILURES_PER_USER=5", "PARLEY_TRUSTED_PROXIES=127.0.0.1/32")...)
	r := c.MustStart(t)
	e2e.MustRegister(t, r.URL, "alice")
	for _, tt := range []struct {
		xff        string
		want401    int
		wantStatus int // of the attempt after them
	}{
		{"203.0.113.1", 3, http.StatusTooManyRequests},            // per address
		{"203.0.113.2, 127.0.0.1", 2, http.StatusTooManyRequests}, // the per-username cap of 5
		{"203.0.113.3", 0, http.StatusTooManyRequests},
	} {
		for i := range tt.want401 {
			resp, err := login(r.URL, "alice", "wrong-password", tt.xff)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusUnauthorized {
				t.Fatalf("%s attempt %d: %d %s", tt.xff, i, resp.Status, resp.Body)
			}
		}
		resp, err := login(r.URL, "alice", "wrong-password", tt.xff)
		if err != nil {
			t.Fatal(err)
		}
		MustRetryAfter(t, resp, tt.wantStatus)
	}
	// Another username is counted on its own.
	if resp, err := login(r.URL, "bob", "wrong-password", "203.0.113.1"); err != nil || resp.Status != http.StatusUnauthorized {
		t.Fatalf("other username: %v %v", resp, err)
	}
}

// TestLoginCountersPruned: counters whose window has passed are deleted as
// other logins are counted, so the table stays about one window's worth.
func TestLoginCountersPruned(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, append(e2e.DefaultLimits, "PARLEY_LOGIN_WINDOW=1s")...)
	r := c.MustStart(t)
	for i := range 10 {
		if resp, err := login(r.URL, fmt.Sprintf("nobody%d", i), "wrong-password", ""); err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("login: %v %v", resp, err)
		}
	}
	// Two counters per login (per username, per address and username);
	// with a 1 s window the first may be pruned already.
	if n := MustCount(t, c.DatabaseURL, `SELECT count(*) FROM login_failures`); n == 0 || n > 20 {
		t.Fatalf("%d counters, want 1 to 20", n)
	}
	conn := e2e.MustConnect(t, c.DatabaseURL)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var passed bool
		if err := conn.QueryRow(t.Context(), `SELECT min(expires_at) < now() FROM login_failures WHERE key LIKE '%nobody9'`).Scan(&passed); err != nil {
			t.Fatal(err)
		}
		if passed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("windows did not pass")
		}
		time.Sleep(100 * time.Millisecond) // the window is wall-clock time
	}
	for i := range 2 {
		if resp, err := login(r.URL, fmt.Sprintf("later%d", i), "wrong-password", ""); err != nil || resp.Status != http.StatusUnauthorized {
			t.Fatalf("login: %v %v", resp, err)
		}
	}
	if n := MustCount(t, c.DatabaseURL, `SELECT count(*) FROM login_failures WHERE key NOT LIKE '%later%'`); n != 0 {
		t.Fatalf("%d counters past their window remain", n)
	}
}

// TestConversationWritesCount: edits, deletes and reactions share the
// posts' write limit; once it is spent each answers 429 and changes
// nothing, while reading and read markers are not limited.
func TestConversationWritesCount(t *testing.T) {
	t.Parallel()
	c := e2e.NewCluster(t, e2e.DefaultLimits...)
	r := c.MustStart(t, "PARLEY_POST_RATE=0.01", "PARLEY_POST_BURST=3")
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	m := alice.MustPost(t, room.ID, "hello")
	msgPath := "/v1/rooms/" + room.ID + "/messages/" + m.ID
	if resp := alice.Do(t, http.MethodPatch, msgPath, map[string]string{"body": "hello, edited"}); resp.Status != http.StatusOK {
		t.Fatalf("edit: %d %s", resp.Status, resp.Body)
	}
	if resp := alice.Do(t, http.MethodPut, msgPath+"/reactions/wave", nil); resp.Status != http.StatusOK {
		t.Fatalf("react: %d %s", resp.Status, resp.Body)
	}
	lastSeq := MustCount(t, c.DatabaseURL, `SELECT last_seq::int FROM rooms WHERE id = $1`, room.ID)
	for _, tt := range []struct {
		name, method, path string
		body               any
	}{
		{"Edit", http.MethodPatch, msgPath, map[string]string{"body": "again"}},
		{"Delete", http.MethodDelete, msgPath, nil},
		{"AddReaction", http.MethodPut, msgPath + "/reactions/tada", nil},
		{"RemoveReaction", http.MethodDelete, msgPath + "/reactions/wave", nil},
		{"Post", http.MethodPost, "/v1/rooms/" + room.ID + "/messages", map[string]string{"body": "more"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			MustRetryAfter(t, alice.Do(t, tt.method, tt.path, tt.body), http.StatusTooManyRequests)
		})
	}
	if n := MustCount(t, c.DatabaseURL, `SELECT last_seq::int FROM rooms WHERE id = $1`, room.ID); n != lastSeq {
		t.Fatalf("room's last seq moved from %d to %d after refused writes", lastSeq, n)
	}
	if resp := alice.Do(t, http.MethodGet, msgPath, nil); resp.Status != http.StatusOK {
		t.Fatalf("read while limited: %d %s", resp.Status, resp.Body)
	}
	if resp := alice.Do(t, http.MethodPut, "/v1/rooms/"+room.ID+"/read", map[string]int64{"seq": m.Seq}); resp.Status != http.StatusOK {
		t.Fatalf("read marker while limited: %d %s", resp.Status, resp.Body)
	}
}
