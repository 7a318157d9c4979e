package faults

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/parley-chat/parley/internal/e2e"
)

// TestReplicaKilled SIGKILLs a replica while posts flow and streams are
// open on it: its subscribers resume on the other replica with
// Last-Event-ID and miss nothing, the posts it was serving are retried on
// the other replica with their client_id, and every acknowledged post is in
// history exactly once.
func TestReplicaKilled(t *testing.T) {
	c := e2e.NewCluster(t)
	reps, authors, room, streams, start := setup(t, c, 2)
	p := startPoster(room.ID, authors)
	p.MustAdvance(t, 30)

	reps[0].Kill() // SIGKILL: no shutdown, no goodbye to its clients
	// The streams on the dead replica end; each resumes on the survivor
	// from the last id it saw.
	resumed := make([]*e2e.Stream, len(authors))
	seen := make([]int64, len(authors))
	for a := range authors {
		seen[a] = start
		for _, f := range streams[a][0].WaitEnd(t, wait) {
			if f.ID != 0 {
				if f.ID <= seen[a] {
					t.Fatalf("author %d: seq %d after %d on the killed replica", a, f.ID, seen[a])
				}
				seen[a] = f.ID
			}
		}
		resumed[a] = authors[a][1].OpenStream(t, room.ID, "", http.Header{"Last-Event-ID": {fmt.Sprint(seen[a])}})
	}
	p.MustAdvance(t, 30) // through the survivor only
	p.Stop()
	p.RetryPending(t)
	p.MustKeepPromises(t)

	seqs := p.mustStoredOnce(t, c.DatabaseURL, authors[0][1])
	if len(seqs) == 0 || seqs[0] != start+1 || seqs[len(seqs)-1] != start+int64(len(seqs)) {
		t.Fatalf("messages hold seqs %d..%d (%d of them), want %d on with no gap", seqs[0], seqs[len(seqs)-1], len(seqs), start+1)
	}
	for a := range authors {
		MustSeeSeqs(t, fmt.Sprintf("author %d resumed", a), resumed[a], after(seqs, seen[a]))
		MustSeeSeqs(t, fmt.Sprintf("author %d on the survivor", a), streams[a][1], seqs)
	}
	retried := 0
	for _, ps := range p.posts {
		if len(ps.statuses) > 1 {
			retried++
		}
	}
	t.Logf("replica killed: %d posts acknowledged, %d retried on the survivor, %d events on each stream; resumed from %v", len(p.posts), retried, len(seqs), seen)
	if err := reps[1].WaitReady(wait); err != nil {
		t.Fatal(err)
	}
}
