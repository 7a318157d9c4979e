package faults

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/e2e"
)

// TestDatabaseOutage stops Postgres during steady posting and streaming,
// then starts it again. Writes during the outage are answered 503 with
// Retry-After, promptly (not 500, not a hang); every post answered 201 is
// in the log afterwards; retrying each 503'd post with its client_id stores
// it exactly once; the open streams deliver everything with no gap and no
// duplicate; and the replicas recover without a restart.
func TestDatabaseOutage(t *testing.T) {
	pg := e2e.NewPrivateServer(t)
	c := &e2e.Cluster{DatabaseURL: pg.URL("postgres"), Secret: e2e.Secret(t)}
	reps, authors, room, streams, start := setup(t, c, 2, fmt.Sprintf("PARLEY_DB_TIMEOUT=%s", dbTimeout))
	p := startPoster(room.ID, authors)
	p.MustAdvance(t, 30)

	stopped := time.Now()
	pg.Stop(t)
	p.MustSee503(t, 20)
	for _, r := range reps {
		if err := r.WaitUnready(wait); err != nil {
			t.Fatal(err)
		}
	}
	// Reads and new streams are refused the same way while it is out.
	for _, r := range []func() (*e2e.Response, error){
		func() (*e2e.Response, error) {
			return authors[0][0].Try(http.MethodGet, "/v1/rooms/"+room.ID+"/messages", nil)
		},
		func() (*e2e.Response, error) {
			return authors[1][1].Try(http.MethodGet, "/v1/rooms/"+room.ID+"/events", nil)
		},
	} {
		resp, err := r()
		if err != nil {
			t.Fatal(err)
		}
		resp.MustProblem(t, http.StatusServiceUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After: %v", resp.Header)
		}
	}
	outage := time.Since(stopped)
	pg.Start(t)
	for _, r := range reps {
		if err := r.WaitReady(wait); err != nil {
			t.Fatal(err) // recovered without a restart
		}
	}
	p.MustAdvance(t, 30)
	p.Stop()
	retried := p.RetryPending(t)
	p.MustKeepPromises(t)

	seqs := p.mustStoredOnce(t, pg.URL("postgres"), authors[0][0])
	if len(seqs) == 0 || seqs[0] != start+1 || seqs[len(seqs)-1] != start+int64(len(seqs)) {
		t.Fatalf("messages hold seqs %d..%d (%d of them), want %d on with no gap", seqs[0], seqs[len(seqs)-1], len(seqs), start+1)
	}
	for a := range streams {
		for r, s := range streams[a] {
			MustSeeSeqs(t, fmt.Sprintf("author %d on replica %d", a, r), s, seqs)
		}
	}
	for _, r := range reps {
		if strings.Contains(r.Log(), `"level":"ERROR"`) {
			t.Errorf("replica %s logged an error during the outage:\n%s", r.URL, r.Log())
		}
	}
	// A 503 may or may not have stored the post: count those that had.
	storedDespite503 := 0
	for _, ps := range p.posts {
		if len(ps.statuses) > 1 && ps.statuses[len(ps.statuses)-1] == http.StatusOK {
			storedDespite503++
		}
	}
	t.Logf("database outage of %s: %d posts, %d answered 503 (or not at all) and retried with their client_id, %d of them already stored (200), slowest answer %s, %d events on each stream",
		outage.Round(time.Millisecond), len(p.posts), retried, storedDespite503, p.slowest.Round(time.Millisecond), len(seqs))
}
