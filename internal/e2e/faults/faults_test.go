// Package faults tests Parley's promises under faults, with real processes:
// a replica killed outright, Postgres stopped under load, a database too
// slow to answer, and clients trickling their requests. A post answered 201
// must be durable, on every stream of its room exactly once and in order;
// a write the database could not take answers 503 with Retry-After, and its
// retry with the same client_id neither loses nor doubles it.
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// wait bounds every wait for something that must happen.
const wait = 30 * time.Second

// dbTimeout is the replicas' database call deadline in these tests: an
// attempt during an outage must be answered within about it.
const dbTimeout = time.Second

// attemptBound is the longest a write may take to be answered during a
// fault: a deadline, the time to notice a lost connection, and slack for
// a loaded machine.
const attemptBound = 3*dbTimeout + 5*time.Second

// post is one message a poster sends, with what each attempt got.
type post struct {
	author   int // index into poster.authors
	clientID string
	body     string
	statuses []int // one per attempt; 0 for no answer (connection lost)
	msg      chat.Message
	acked    bool
}

// poster posts to a room from several authors until stopped: every post
// carries a client_id, and an attempt that gets no answer (its replica
// died) is retried at once on the next replica by the same author with the
// same client_id. An attempt answered 503 leaves the post pending, to be
// retried by RetryPending. It checks every answer as it comes: 201 (200
// only for a retry), or 503 with Retry-After as a problem, within
// attemptBound.
type poster struct {
	room string
	// authors[a][r] is author a's client on replica r.
	authors [][]*e2e.Client

	mu      sync.Mutex
	posts   []*post
	bad     []string // answers that break the promise
	slowest time.Duration
	n503    int

	acked    atomic.Int64
	progress chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup
}

// startPoster starts one posting goroutine per author.
func startPoster(room string, authors [][]*e2e.Client) *poster {
	p := &poster{room: room, authors: authors, progress: make(chan struct{}, 1), stop: make(chan struct{})}
	for a := range authors {
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			for i := 0; ; i++ {
				select {
				case <-p.stop:
					return
				default:
				}
				ps := &post{author: a, clientID: fmt.Sprintf("a%d-c%d", a, i), body: fmt.Sprintf("author %d post %d", a, i)}
				p.mu.Lock()
				p.posts = append(p.posts, ps)
				p.mu.Unlock()
				if !p.send(ps, i) {
					// The database is out: do not hammer it.
					select {
					case <-p.stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}()
	}
	return p
}

// send tries ps on each replica in turn, starting at replica first, until
// one answers; it reports whether ps was acknowledged.
func (p *poster) send(ps *post, first int) bool {
	reps := p.authors[ps.author]
	for k := range reps {
		c := reps[(first+k)%len(reps)]
		start := time.Now()
		resp, err := c.Try(http.MethodPost, "/v1/rooms/"+p.room+"/messages", map[string]string{"body": ps.body, "client_id": ps.clientID})
		took := time.Since(start)
		p.mu.Lock()
		p.slowest = max(p.slowest, took)
		if took > attemptBound {
			p.bad = append(p.bad, fmt.Sprintf("%s: answered after %s", ps.clientID, took))
		}
		if err != nil {
			ps.statuses = append(ps.statuses, 0)
			p.mu.Unlock()
			continue // the replica is gone: the next one, same client_id
		}
		ps.statuses = append(ps.statuses, resp.Status)
		ok := p.judge(ps, resp)
		p.mu.Unlock()
		if ok {
			p.acked.Add(1)
			select {
			case p.progress <- struct{}{}:
			default:
			}
		}
		return ok
	}
	return false
}

// judge checks one answer to ps (p.mu held) and reports whether it
// acknowledged the post.
func (p *poster) judge(ps *post, resp *e2e.Response) bool {
	retry := len(ps.statuses) > 1
	switch {
	case resp.Status == http.StatusCreated || resp.Status == http.StatusOK && retry:
		var m chat.Message
		if err := json.Unmarshal(resp.Body, &m); err != nil || m.Seq <= 0 || m.Body != ps.body || m.ClientID != ps.clientID {
			p.bad = append(p.bad, fmt.Sprintf("%s: %d with %s", ps.clientID, resp.Status, resp.Body))
			return false
		}
		if ps.acked && m.ID != ps.msg.ID {
			p.bad = append(p.bad, fmt.Sprintf("%s: acknowledged as %s and as %s", ps.clientID, ps.msg.ID, m.ID))
		}
		ps.msg, ps.acked = m, true
		return true
	case resp.Status == http.StatusServiceUnavailable:
		p.n503++
		if resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			p.bad = append(p.bad, fmt.Sprintf("%s: 503 without Retry-After or problem body: %v %s", ps.clientID, resp.Header, resp.Body))
		}
		return false
	default:
		p.bad = append(p.bad, fmt.Sprintf("%s: attempt %d answered %d %s", ps.clientID, len(ps.statuses), resp.Status, resp.Body))
		return false
	}
}

// MustAdvance waits until n more posts are acknowledged.
func (p *poster) MustAdvance(tb testing.TB, n int64) {
	tb.Helper()
	target := p.acked.Load() + n
	timeout := time.After(wait)
	for p.acked.Load() < target {
		select {
		case <-p.progress:
		case <-timeout:
			tb.Fatalf("posting stalled at %d acknowledged posts", p.acked.Load())
		}
	}
}

// MustSee503 waits until posts have been answered 503 n times.
func (p *poster) MustSee503(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		p.mu.Lock()
		got := p.n503
		p.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d posts answered 503 within %s, want %d", got, wait, n)
		}
		time.Sleep(20 * time.Millisecond) // poll the poster's tally
	}
}

// Stop stops posting.
func (p *poster) Stop() {
	close(p.stop)
	p.done.Wait()
}

// RetryPending retries every post not yet acknowledged, with its own
// client_id, until it is (call after Stop, once the database is back).
func (p *poster) RetryPending(tb testing.TB) (retried int) {
	tb.Helper()
	for _, ps := range p.posts {
		deadline := time.Now().Add(wait)
		for !ps.acked {
			if time.Now().After(deadline) {
				tb.Fatalf("%s not acknowledged after retrying for %s: %v", ps.clientID, wait, ps.statuses)
			}
			if !p.send(ps, 0) {
				time.Sleep(100 * time.Millisecond) // the database is still coming back
			}
		}
		if len(ps.statuses) > 1 {
			retried++
		}
	}
	return retried
}

// MustKeepPromises fails the test for every answer that broke the promise.
func (p *poster) MustKeepPromises(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bad {
		tb.Error(b)
	}
	if tb.Failed() {
		tb.FailNow()
	}
}

// mustStoredOnce checks the room's log against the posts, in the database
// and through history: every acknowledged post is stored exactly once
// (one message and one log event per author and client_id, with the id
// and seq it was acknowledged with), and nothing else was stored. It
// returns the seqs of the messages, ascending.
func (p *poster) mustStoredOnce(tb testing.TB, dbURL string, reader *e2e.Client) []int64 {
	tb.Helper()
	conn := e2e.MustConnect(tb, dbURL)
	type key struct{ author, clientID string }
	want := map[key]*post{}
	for _, ps := range p.posts {
		if !ps.acked {
			tb.Fatalf("%s was never acknowledged", ps.clientID)
		}
		want[key{p.authors[ps.author][0].Session.User.ID, ps.clientID}] = ps
	}
	for _, table := range []string{"messages", "room_events"} {
		author := "author_id"
		if table == "room_events" {
			author = "subject_id"
		}
		rows, err := conn.Query(context.Background(), `SELECT `+author+`::text, client_id, count(*), min(seq)
			FROM `+table+` WHERE room_id = $1 AND client_id IS NOT NULL GROUP BY 1, 2`, p.room)
		if err != nil {
			tb.Fatal(err)
		}
		got := 0
		for rows.Next() {
			var k key
			var n, seq int64
			if err := rows.Scan(&k.author, &k.clientID, &n, &seq); err != nil {
				tb.Fatal(err)
			}
			got++
			ps := want[k]
			switch {
			case ps == nil:
				tb.Errorf("%s: %s stored with client_id %q, which no post used", table, k.author, k.clientID)
			case n != 1:
				tb.Errorf("%s: %s stored %d times", table, k.clientID, n)
			case seq != ps.msg.Seq:
				tb.Errorf("%s: %s stored at seq %d, acknowledged at %d", table, k.clientID, seq, ps.msg.Seq)
			}
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		if got != len(want) {
			tb.Errorf("%s: %d posts stored, %d acknowledged", table, got, len(want))
		}
	}
	// History (through the API) holds every acknowledged message, by id.
	var seqs []int64
	bySeq := map[int64]*post{}
	for _, ps := range want {
		bySeq[ps.msg.Seq] = ps
	}
	for after := int64(0); ; {
		resp := reader.Do(tb, http.MethodGet, fmt.Sprintf("/v1/rooms/%s/messages?after=%d&limit=100", p.room, after), nil)
		if resp.Status != http.StatusOK {
			tb.Fatalf("history: %d %s", resp.Status, resp.Body)
		}
		var page struct {
			Messages []chat.Message `json:"messages"`
			HasMore  bool           `json:"has_more"`
		}
		resp.JSON(tb, &page)
		for _, m := range page.Messages {
			if ps := bySeq[m.Seq]; ps != nil && ps.msg.ID != m.ID {
				tb.Errorf("history: seq %d is %s, acknowledged as %s", m.Seq, m.ID, ps.msg.ID)
			}
			delete(bySeq, m.Seq)
			seqs = append(seqs, m.Seq)
			after = m.Seq
		}
		if !page.HasMore {
			break
		}
	}
	for seq, ps := range bySeq {
		tb.Errorf("history: %s (seq %d, answered %v) is missing", ps.clientID, seq, ps.statuses)
	}
	if tb.Failed() {
		tb.FailNow()
	}
	return seqs
}

// MustSeeSeqs reads s until it has seen every seq in seqs, which must come
// exactly once and in order, with nothing else durable in between.
func MustSeeSeqs(tb testing.TB, name string, s *e2e.Stream, seqs []int64) {
	tb.Helper()
	for _, want := range seqs {
		f := s.Next(tb, wait)
		for f.Type == "ready" {
			f = s.Next(tb, wait)
		}
		if f.ID != want {
			tb.Fatalf("%s: got seq %d (%s), want %d", name, f.ID, f.Type, want)
		}
	}
}

// after is the part of seqs above seq.
func after(seqs []int64, seq int64) []int64 {
	for i, s := range seqs {
		if s > seq {
			return seqs[i:]
		}
	}
	return nil
}

// setup starts two replicas on c, registers n authors who join one room,
// and opens each author's stream of the room on each replica, from the
// room's start. streams[a][r] is author a's stream on replica r; start is
// the last seq the streams replayed.
func setup(t *testing.T, c *e2e.Cluster, n int, env ...string) (reps []*e2e.Replica, authors [][]*e2e.Client, room chat.Room, streams [][]*e2e.Stream, start int64) {
	t.Helper()
	reps = []*e2e.Replica{c.MustStart(t, env...), c.MustStart(t, env...)}
	for a := range n {
		u := e2e.MustRegister(t, reps[a%2].URL, fmt.Sprintf("author%d", a))
		authors = append(authors, []*e2e.Client{u.As(reps[0].URL), u.As(reps[1].URL)})
	}
	room = authors[0][0].MustCreateRoom(t, "faults", chat.Public)
	for _, a := range authors[1:] {
		a[0].MustJoin(t, room.ID)
	}
	for _, a := range authors {
		var row []*e2e.Stream
		for _, cl := range a {
			s := cl.OpenStream(t, room.ID, "after=0", nil)
			replayed := s.UntilReady(t, wait)
			start = replayed[len(replayed)-1].ID
			row = append(row, s)
		}
		streams = append(streams, row)
	}
	return reps, authors, room, streams, start
}
