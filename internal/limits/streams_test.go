package limits

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

func mustCode(tb testing.TB, err error, want chat.Code) {
	tb.Helper()
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != want || ce.RetryAfter < time.Second {
		tb.Fatalf("err %v, want %s with a RetryAfter of at least 1s", err, want)
	}
}

func TestStreams(t *testing.T) {
	t.Run("PerUserCap", func(t *testing.T) {
		s := NewStreams(2, 0)
		a1, err1 := s.Acquire("alice")
		_, err2 := s.Acquire("alice")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		_, err := s.Acquire("alice")
		mustCode(t, err, chat.ETooMany)
		if _, err := s.Acquire("bob"); err != nil {
			t.Fatalf("another user refused: %v", err)
		}
		a1.Release()
		if _, err := s.Acquire("alice"); err != nil {
			t.Fatalf("after a release: %v", err)
		}
		if st := s.Stats(); st.Open != 3 || st.RefusedUser != 1 || st.RefusedReplica != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("ReplicaCap", func(t *testing.T) {
		s := NewStreams(0, 2)
		a, _ := s.Acquire("alice")
		if _, err := s.Acquire("bob"); err != nil {
			t.Fatal(err)
		}
		_, err := s.Acquire("carol")
		mustCode(t, err, chat.EUnavailable)
		a.Release()
		if _, err := s.Acquire("carol"); err != nil {
			t.Fatalf("after a release: %v", err)
		}
		if st := s.Stats(); st.RefusedReplica != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("UserCapWins", func(t *testing.T) {
		s := NewStreams(1, 1)
		_, _ = s.Acquire("alice")
		_, err := s.Acquire("alice")
		mustCode(t, err, chat.ETooMany)
	})
	t.Run("NoCaps", func(t *testing.T) {
		s := NewStreams(0, 0)
		for range 1000 {
			if _, err := s.Acquire("alice"); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("ReleaseTwice", func(t *testing.T) {
		s := NewStreams(1, 0)
		a, _ := s.Acquire("alice")
		a.Release()
		a.Release()
		if st := s.Stats(); st.Open != 0 || s.OpenFor("alice") != 0 || len(s.users) != 0 {
			t.Fatalf("after a double release: %+v, alice %d, users %d", st, s.OpenFor("alice"), len(s.users))
		}
	})
	t.Run("ConcurrentOpens", func(t *testing.T) {
		s := NewStreams(32, 0)
		var wg sync.WaitGroup
		var mu sync.Mutex
		got, refused := 0, 0
		start := make(chan struct{})
		for range 40 {
			wg.Go(func() {
				<-start
				_, err := s.Acquire("alice")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					refused++
				} else {
					got++
				}
			})
		}
		close(start)
		wg.Wait()
		if got != 32 || refused != 8 || s.OpenFor("alice") != 32 {
			t.Fatalf("%d opened, %d refused, %d counted; want 32, 8, 32", got, refused, s.OpenFor("alice"))
		}
	})
}

// BenchmarkStreamsAcquire is the cost a stream open pays for the caps.
func BenchmarkStreamsAcquire(b *testing.B) {
	s := NewStreams(32, 10000)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sl, err := s.Acquire("alice")
			if err != nil {
				b.Fatal(err)
			}
			sl.Release()
		}
	})
}
