package userstream

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// TestUserStreamEnds: the user stream ends as room streams do: at the
// token's exp after reauth, and within 10 s of SIGTERM, after which the
// client resumes elsewhere with its last id and misses nothing.
func TestUserStreamEnds(t *testing.T) {
	t.Run("TokenExpiry", func(t *testing.T) {
		c := e2e.NewCluster(t, "PARLEY_ACCESS_TTL=2s")
		alice := e2e.MustRegister(t, c.MustStart(t).URL, "alice")
		s := alice.OpenUserStream(t, "", nil)
		s.UntilReady(t, wait)
		fs := s.WaitEnd(t, 10*time.Second)
		if len(fs) != 1 || fs[0].Type != "reauth" || fs[0].Data != `{"reason":"token_expired"}` {
			t.Fatalf("stream ended with %+v, want one reauth", fs)
		}
	})
	t.Run("Shutdown", func(t *testing.T) {
		c := e2e.NewCluster(t, unlimited...)
		a, b := c.MustStart(t), c.MustStart(t)
		alice := e2e.MustRegister(t, a.URL, "alice")
		room := alice.MustCreateRoom(t, "general", chat.Public)
		s := alice.OpenUserStream(t, "", nil)
		s.UntilReady(t, wait)
		first := alice.MustPost(t, room.ID, "before")
		f := s.Next(t, wait)
		if MustEvent(t, f).Seq != first.Seq {
			t.Fatalf("got %+v, want the first post", f)
		}
		sigAt := time.Now()
		if err := a.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		s.WaitEnd(t, 10*time.Second)
		if took := time.Since(sigAt); took > 10*time.Second {
			t.Fatalf("stream ended %s after SIGTERM", took)
		}
		bob := alice.As(b.URL)
		missed := bob.MustPost(t, room.ID, "while away")
		r := bob.OpenUserStream(t, "", http.Header{"Last-Event-ID": {f.RawID}})
		replayed := r.UntilReady(t, wait)
		if len(replayed) != 1 || MustEvent(t, replayed[0]).Seq != missed.Seq {
			t.Fatalf("resumed with %+v, want the one missed post", replayed)
		}
	})
}
