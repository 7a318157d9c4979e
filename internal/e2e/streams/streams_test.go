// Package streams tests the live room streams across replicas.
package streams

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const wait = 10 * time.Second

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

	streams := []*e2e.Stream{
		alice.OpenStream(t, room.ID, "", nil),
		alice.As(b.URL).OpenStream(t, room.ID, "", nil),
		bob.OpenStream(t, room.ID, "", nil),
		bob.As(a.URL).OpenStream(t, room.ID, "", nil),
	}
	for _, s := range streams {
		s.UntilReady(t, wait)
	}
	const n = 20
	var want []string
	for i := range n {
		poster := alice
		if i%2 == 1 {
			poster = bob
		}
		m := poster.MustPost(t, room.ID, fmt.Sprintf("m%d", i))
		want = append(want, m.ID)
		alice.MustPost(t, other.ID, fmt.Sprintf("noise %d", i))
	}
	for i, s := range streams {
		for j := range n {
			f := s.Next(t, wait)
			var m chat.Message
			if err := jsonUnmarshal(f.Data, &m); err != nil {
				t.Fatal(err)
			}
			if f.Type != "message" || m.ID != want[j] || m.RoomID != room.ID || f.ID != m.Seq {
				t.Fatalf("stream %d frame %d: got %s %d %s, want message %s", i, j, f.Type, f.ID, f.Data, want[j])
			}
		}
		select {
		case f := <-s.Frames:
			t.Fatalf("stream %d: unexpected extra frame %+v", i, f)
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = sync.Mutex{}
	_ = http.StatusOK
}
