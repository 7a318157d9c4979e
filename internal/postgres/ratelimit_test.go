package postgres_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/postgres"
)

// TestChargeWrite: the stand-alone charge (for edits, deletes and
// reactions) shares the posts' bucket, grants the burst to concurrent
// writers exactly once, and then refuses with a wait.
func TestChargeWrite(t *testing.T) {
	t.Parallel()
	f := MustEventFixture(t, 8, postgres.WithLimits(postgres.Limits{PostRate: 0.001, PostBurst: 5}))
	room := f.MustRoom(t)
	f.MustPost(t, room, "one post of the five")
	var mu sync.Mutex
	var wg sync.WaitGroup
	granted, refused := 0, 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f.db.ChargeWrite(t.Context(), f.user)
			mu.Lock()
			defer mu.Unlock()
			var ce *chat.Error
			switch {
			case err == nil:
				granted++
			case errors.As(err, &ce) && ce.Code == chat.ETooMany && ce.RetryAfter > 0:
				refused++
			default:
				t.Errorf("charge: %v", err)
			}
		}()
	}
	wg.Wait()
	if granted != 4 || refused != 16 {
		t.Fatalf("granted %d, refused %d; want 4 and 16", granted, refused)
	}
	if _, _, err := f.db.PostMessage(t.Context(), f.user, room, chat.MessagePost{Body: "over"}); chat.ErrorCode(err) != chat.ETooMany {
		t.Fatalf("post after the burst: %v, want ETooMany", err)
	}
}
