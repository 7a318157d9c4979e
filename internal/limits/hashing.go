package limits

import (
	"context"
	"runtime"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// HashWait is how long a password hash waits for a slot before the caller
// is told to come back later.
const HashWait = 5 * time.Second

// hashRetryAfter is what a caller refused a hashing slot is asked to wait.
const hashRetryAfter = 2 * time.Second

// Gate bounds how many expensive calls (argon2id hashes, 19 MiB each) run at
// once. The zero value is not usable; make one with NewGate.
type Gate struct {
	slots chan struct{}
	wait  time.Duration
}

// NewGate returns a gate of n slots whose callers wait at most wait for one.
// n <= 0 means runtime.GOMAXPROCS(0), one hash per CPU the process may use.
func NewGate(n int, wait time.Duration) *Gate {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &Gate{slots: make(chan struct{}, n), wait: wait}
}

// Size is the number of slots.
func (g *Gate) Size() int { return cap(g.slots) }

// Do runs fn in a slot. It waits up to the gate's wait for one, then
// returns an EUnavailable error with a RetryAfter; it returns ctx's error if
// the caller goes away first.
func (g *Gate) Do(ctx context.Context, fn func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		t := time.NewTimer(g.wait)
		defer t.Stop()
		select {
		case g.slots <- struct{}{}:
		case <-t.C:
			return chat.Busy(hashRetryAfter, "too many password checks in progress; retry later")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	fn()
	return nil
}
