// Package resilience tests that streams hold their promise when things go
// wrong: the LISTEN connection or Postgres itself goes away, a subscriber
// stops reading, members are removed, tokens expire, replicas shut down.
package resilience

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const wait = 30 * time.Second

// poster posts messages until stopped, each with a client_id and retried
// until acknowledged, so an outage neither loses nor doubles a post. A
// retry keeps the post's author (a client_id is unique per room and
// author: the same client_id from another user is another post) and moves
// to the next client's replica. It records the highest acknowledged seq.
type poster struct {
	clients  []*e2e.Client
	roomID   string
	stop     chan struct{}
	done     chan struct{}
	acked    atomic.Int64
	count    atomic.Int64
	progress chan struct{} // signalled after each acknowledged post
	failed   atomic.Int64  // attempts that did not get 201/200
}

func startPoster(roomID string, clients ...*e2e.Client) *poster {
	p := &poster{clients: clients, roomID: roomID, stop: make(chan struct{}), done: make(chan struct{}), progress: make(chan struct{}, 1)}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			p.post(i)
		}
	}()
	return p
}

func (p *poster) post(i int) {
	body := map[string]string{"body": fmt.Sprintf("post %d", i), "client_id": fmt.Sprintf("c%d", i)}
	author := p.clients[i%len(p.clients)]
	for attempt := 0; ; attempt++ {
		c := author.As(p.clients[(i+attempt)%len(p.clients)].Base)
		resp, err := c.Try(http.MethodPost, "/v1/rooms/"+p.roomID+"/messages", body)
		if err == nil && (resp.Status == http.StatusCreated || resp.Status == http.StatusOK) {
			var m chat.Message
			if json.Unmarshal(resp.Body, &m) == nil && m.Seq > p.acked.Load() {
				p.acked.Store(m.Seq)
			}
			p.count.Add(1)
			select {
			case p.progress <- struct{}{}:
			default:
			}
			return
		}
		p.failed.Add(1)
		time.Sleep(20 * time.Millisecond) // back off before retrying the same post
	}
}

// MustAdvance waits until n more posts are acknowledged.
func (p *poster) MustAdvance(tb testing.TB, n int64) {
	tb.Helper()
	target := p.count.Load() + n
	timeout := time.After(wait)
	for p.count.Load() < target {
		select {
		case <-p.progress:
		case <-timeout:
			tb.Fatalf("posting stalled at %d acknowledged posts (%d failed attempts)", p.count.Load(), p.failed.Load())
		}
	}
}

// Stop stops posting and returns the last acknowledged seq.
func (p *poster) Stop() int64 {
	close(p.stop)
	<-p.done
	return p.acked.Load()
}

// MustSeeAll reads s until seq last and fails unless every seq from
// first on arrives exactly once, in order.
func MustSeeAll(tb testing.TB, name string, s *e2e.Stream, first, last int64) {
	tb.Helper()
	for next := first; next <= last; {
		f := s.Next(tb, wait)
		if f.Type == "ready" {
			continue
		}
		if f.ID != next {
			tb.Fatalf("%s: got seq %d (%s), want %d", name, f.ID, f.Type, next)
		}
		next++
	}
}

// mustDBName is the database name in url.
func mustDBName(tb testing.TB, url string) string {
	tb.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg.Database
}

// adminURL is url with the database swapped for postgres, to reach the
// server while the test database refuses connections.
func adminURL(tb testing.TB, url string) string {
	tb.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/postgres"
	return u.String()
}

// mustJWTClaims decodes a JWT's claims without verifying it.
func mustJWTClaims(tb testing.TB, token string, v any) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatal(err)
	}
}

const sigterm = syscall.SIGTERM

// MustReadiness waits until every replica's /readyz says ready (or not).
func MustReadiness(tb testing.TB, reps []*e2e.Replica, ready bool) {
	tb.Helper()
	for _, r := range reps {
		check := r.WaitUnready
		if ready {
			check = r.WaitReady
		}
		if err := check(wait); err != nil {
			tb.Fatal(err)
		}
	}
}

// MustDeliverAll lets the poster go on for 20 more posts after a recovery,
// stops it, and checks every stream got every event after start, once, in
// order, through the last acknowledged post.
func MustDeliverAll(tb testing.TB, p *poster, streams []*e2e.Stream, start int64) {
	tb.Helper()
	p.MustAdvance(tb, 20)
	last := p.Stop()
	for i, s := range streams {
		MustSeeAll(tb, fmt.Sprintf("stream %d", i), s, start+1, last)
	}
}

// MustExec runs SQL on the test database as an operator would.
func MustExec(tb testing.TB, url, sql string, args ...any) {
	tb.Helper()
	if _, err := e2e.MustConnect(tb, url).Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// setup starts two replicas with a room, a member on each, and open
// streams from the room's start on both replicas.
// start is the last seq the streams replayed.
func setup(t *testing.T, c *e2e.Cluster) (reps []*e2e.Replica, alice, bob *e2e.Client, room chat.Room, streams []*e2e.Stream, start int64) {
	t.Helper()
	reps = []*e2e.Replica{c.MustStart(t), c.MustStart(t)}
	alice = e2e.MustRegister(t, reps[0].URL, "alice")
	bob = e2e.MustRegister(t, reps[1].URL, "bob")
	room = alice.MustCreateRoom(t, "general", chat.Public)
	bob.MustJoin(t, room.ID)
	for _, c := range []*e2e.Client{alice, bob, alice.As(reps[1].URL), bob.As(reps[0].URL)} {
		s := c.OpenStream(t, room.ID, "after=0", nil)
		replayed := s.UntilReady(t, wait)
		start = replayed[len(replayed)-1].ID
		streams = append(streams, s)
	}
	return reps, alice, bob, room, streams, start
}

// TestListenerLoss kills the LISTEN connections, and separately every
// Parley connection, during steady posting: no subscriber misses or
// repeats an event, and readiness reports the outage.
func TestListenerLoss(t *testing.T) {
	tests := []struct {
		name string
		kill string // which backends of the test database to terminate
		// postsDuringOutage: the pools keep their connections, so posts
		// commit while no listener hears them.
		postsDuringOutage bool
	}{
		{"ListenerTerminated", `application_name = 'parley-listener'`, true},
		{"EveryConnectionKilled", `application_name LIKE 'parley%'`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e2e.NewCluster(t)
			reps, alice, bob, room, streams, start := setup(t, c)
			p := startPoster(room.ID, alice, bob)
			p.MustAdvance(t, 20)
			// Refuse new connections while killing the old ones, so the
			// outage lasts until readiness has been seen to report it.
			dbName := mustDBName(t, c.DatabaseURL)
			MustExec(t, adminURL(t, c.DatabaseURL), fmt.Sprintf(`ALTER DATABASE %q WITH ALLOW_CONNECTIONS false`, dbName))
			MustExec(t, adminURL(t, c.DatabaseURL), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = $1 AND `+tt.kill, dbName)
			MustReadiness(t, reps, false)
			if tt.postsDuringOutage {
				p.MustAdvance(t, 10)
			}
			MustExec(t, adminURL(t, c.DatabaseURL), fmt.Sprintf(`ALTER DATABASE %q WITH ALLOW_CONNECTIONS true`, dbName))
			MustReadiness(t, reps, true)
			MustDeliverAll(t, p, streams, start)
		})
	}
}

// TestPostgresRestart stops Postgres during posting and streaming and starts
// it again: Parley recovers by itself and every acknowledged post reaches
// every subscriber.
func TestPostgresRestart(t *testing.T) {
	pg := e2e.NewPrivateServer(t)
	c := &e2e.Cluster{DatabaseURL: pg.URL("postgres"), Secret: e2e.Secret(t)}
	reps, alice, bob, room, streams, start := setup(t, c)
	p := startPoster(room.ID, alice, bob)
	p.MustAdvance(t, 20)
	pg.Stop(t)
	MustReadiness(t, reps, false)
	pg.Start(t)
	MustReadiness(t, reps, true)
	MustDeliverAll(t, p, streams, start)
}

// TestRevocation: removal and deletion end the affected streams on both
// replicas within a second, after the user's own member.left.
func TestRevocation(t *testing.T) {
	c := e2e.NewCluster(t)
	reps, alice, bob, room, streams, _ := setup(t, c)
	// streams: alice@0, bob@1, alice@1, bob@0
	start := time.Now()
	if resp := alice.Do(t, http.MethodDelete, "/v1/rooms/"+room.ID+"/members/"+bob.Session.User.ID, nil); resp.Status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", resp.Status, resp.Body)
	}
	for _, s := range []*e2e.Stream{streams[1], streams[3]} {
		fs := s.WaitEnd(t, time.Second)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("bob's stream ended after %s", took)
		}
		if len(fs) == 0 || fs[len(fs)-1].Type != "member.left" {
			t.Fatalf("bob's stream ended with %+v, want his member.left last", fs)
		}
		var left chat.MemberLeft
		if err := json.Unmarshal([]byte(fs[len(fs)-1].Data), &left); err != nil || left.UserID != bob.Session.User.ID || left.Reason != chat.ReasonRemoved {
			t.Fatalf("member.left %s: %v", fs[len(fs)-1].Data, err)
		}
	}
	// Alice's streams stay open and see the removal too.
	for _, s := range []*e2e.Stream{streams[0], streams[2]} {
		if f := s.Next(t, wait); f.Type != "member.left" {
			t.Fatalf("alice got %+v, want member.left", f)
		}
	}
	// Deleting the room ends every stream of it on both replicas.
	start = time.Now()
	if resp := alice.Do(t, http.MethodDelete, "/v1/rooms/"+room.ID, nil); resp.Status != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.Status)
	}
	for _, s := range []*e2e.Stream{streams[0], streams[2]} {
		fs := s.WaitEnd(t, time.Second)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("alice's stream ended after %s", took)
		}
		if len(fs) != 1 || fs[0].Type != "room.deleted" {
			t.Fatalf("alice's stream ended with %+v, want room.deleted", fs)
		}
	}
	// Each replica counted one stream ended by the removal and one by the
	// deletion.
	for _, r := range reps {
		r.WaitMetric(t, `parley_stream_ends_total{reason="room_deleted"}`, 1, wait)
		m := r.WaitMetric(t, `parley_stream_ends_total{reason="removed"}`, 1, wait)
		if n := m[`parley_stream_ends_total{reason="left"}`]; n != 0 {
			t.Errorf("replica %s: %v streams counted as left, want 0", r.URL, n)
		}
	}
}

// TestTokenExpiry: a stream ends at its access token's exp, after reauth.
func TestTokenExpiry(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_ACCESS_TTL=2s")
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	s := alice.OpenStream(t, room.ID, "", nil)
	s.UntilReady(t, wait)
	fs := s.WaitEnd(t, 10*time.Second)
	if len(fs) != 1 || fs[0].Type != "reauth" || fs[0].Data != `{"reason":"token_expired"}` {
		t.Fatalf("stream ended with %+v, want one reauth", fs)
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	mustJWTClaims(t, alice.Token, &claims)
	if now := time.Now().Unix(); now < claims.Exp {
		t.Fatalf("stream ended at %d, before exp %d", now, claims.Exp)
	}
	r.WaitMetric(t, `parley_stream_ends_total{reason="token_expired"}`, 1, wait)
	// The expired token no longer opens a stream: the client must refresh.
	if _, err := alice.TryStream(room.ID, "", nil); err == nil {
		t.Fatal("an expired token opened a stream")
	}
}

// TestShutdown sends SIGTERM to a replica while streams are open and posts
// flow: its streams end, its clients resume on the other replica with
// Last-Event-ID, nothing is lost, and it exits in time.
func TestShutdown(t *testing.T) {
	c := e2e.NewCluster(t)
	reps, alice, bob, room, streams, start := setup(t, c)
	p := startPoster(room.ID, alice, bob)
	p.MustAdvance(t, 20)
	// streams 0 and 3 are on replica 0.
	onA := []*e2e.Stream{streams[0], streams[3]}
	sigAt := time.Now()
	if err := reps[0].Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	resumed := make([]*e2e.Stream, len(onA))
	seen := make([]int64, len(onA))
	for i, s := range onA {
		fs := s.WaitEnd(t, 10*time.Second)
		if took := time.Since(sigAt); took > 10*time.Second {
			t.Fatalf("stream ended %s after SIGTERM", took)
		}
		for _, f := range fs {
			if f.ID != 0 {
				seen[i] = f.ID
			}
		}
		if seen[i] == 0 {
			seen[i] = start
		}
	}
	// Resume on the surviving replica.
	for i, cl := range []*e2e.Client{alice.As(reps[1].URL), bob.As(reps[1].URL)} {
		resumed[i] = cl.OpenStream(t, room.ID, "", http.Header{"Last-Event-ID": {fmt.Sprint(seen[i])}})
	}
	select {
	case <-reps[0].Exited():
	case <-time.After(20*time.Second - time.Since(sigAt)):
		t.Fatal("replica did not exit within 20s of SIGTERM")
	}
	if err := reps[0].ExitErr(); err != nil {
		t.Fatalf("replica exited with %v", err)
	}
	// Its metrics are gone with it; its log says why its streams ended.
	if n := strings.Count(reps[0].Log(), `"stream_end":"shutdown"`); n != len(onA) {
		t.Errorf("%d streams logged as ended by shutdown, want %d:\n%s", n, len(onA), reps[0].Log())
	}
	// Posts keep flowing through replica 1 only (the poster retries).
	p.MustAdvance(t, 20)
	last := p.Stop()
	wg.Wait()
	for i, s := range resumed {
		MustSeeAll(t, fmt.Sprintf("resumed %d", i), s, seen[i]+1, last)
	}
	for i, s := range []*e2e.Stream{streams[1], streams[2]} {
		MustSeeAll(t, fmt.Sprintf("surviving %d", i), s, start+1, last)
	}
}
