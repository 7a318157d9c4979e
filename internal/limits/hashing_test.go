package limits

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

func TestGate(t *testing.T) {
	t.Run("BoundsConcurrency", func(t *testing.T) {
		g := NewGate(3, time.Minute)
		var running, peak atomic.Int32
		var wg sync.WaitGroup
		release := make(chan struct{})
		entered := make(chan struct{}, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := g.Do(context.Background(), func() {
					n := running.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					entered <- struct{}{}
					<-release
					running.Add(-1)
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		for range 3 {
			<-entered
		}
		close(release)
		wg.Wait()
		if p := peak.Load(); p != 3 {
			t.Fatalf("peak concurrency %d, want 3", p)
		}
	})
	t.Run("ErrBusyAfterWait", func(t *testing.T) {
		g := NewGate(1, 50*time.Millisecond)
		hold, held := make(chan struct{}), make(chan struct{})
		go func() { _ = g.Do(context.Background(), func() { close(held); <-hold }) }()
		<-held
		defer close(hold)
		ran := false
		err := g.Do(context.Background(), func() { ran = true })
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Code != chat.EUnavailable || ce.RetryAfter < time.Second {
			t.Fatalf("err %v, want EUnavailable with a RetryAfter of at least 1s", err)
		}
		if ran {
			t.Fatal("fn ran without a slot")
		}
	})
	t.Run("CallerGone", func(t *testing.T) {
		g := NewGate(1, time.Minute)
		hold, held := make(chan struct{}), make(chan struct{})
		go func() { _ = g.Do(context.Background(), func() { close(held); <-hold }) }()
		<-held
		defer close(hold)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := g.Do(ctx, func() {}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
	t.Run("DefaultIsGOMAXPROCS", func(t *testing.T) {
		if g := NewGate(0, time.Second); g.Size() < 1 {
			t.Fatalf("size %d", g.Size())
		}
	})
}
