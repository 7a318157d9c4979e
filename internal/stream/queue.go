package stream

import (
	"sync"

	"github.com/parley-chat/parley/internal/chat"
)

// keepCap is the largest backing array a queue keeps once drained: a burst
// (live events queued during a replay, a hot room) may grow it up to the
// bound, but an idle subscriber should not hold that memory.
const keepCap = 32

// queue is a subscriber's bounded queue of undelivered events. Unlike a
// channel of the same bound, it allocates as it fills: an idle subscriber
// costs a few words and a one-slot signal channel, not limit pointers (a
// 1,024-slot channel is 9 KiB per subscriber). The hub pushes (under its
// lock, so one pusher at a time); the stream's goroutine pops.
type queue struct {
	limit int
	// ready holds a token while events may wait: push signals it when the
	// queue turns non-empty, and a popper pops until next reports none.
	ready chan struct{}

	mu   sync.Mutex
	evs  []*chat.Event // queued events are evs[head:]
	head int
}

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues ev and reports false, queueing nothing, when the queue holds
// limit events already.
func (q *queue) push(ev *chat.Event) bool {
	q.mu.Lock()
	n := len(q.evs) - q.head
	if n >= q.limit {
		q.mu.Unlock()
		return false
	}
	if len(q.evs) == cap(q.evs) && q.head > 0 {
		// Reuse the popped front before growing, so the array stays
		// within the bound however pushes and pops interleave.
		copy(q.evs, q.evs[q.head:])
		clear(q.evs[n:])
		q.evs, q.head = q.evs[:n], 0
	}
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
	if n == 0 {
		select {
		case q.ready <- struct{}{}:
		default: // a token is waiting already
		}
	}
	return true
}

// next pops the oldest queued event, if any.
func (q *queue) next() (*chat.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.evs) {
		return nil, false
	}
	ev := q.evs[q.head]
	q.evs[q.head] = nil
	q.head++
	if q.head == len(q.evs) {
		// Empty: start over at the front, letting go of a burst's array.
		q.head = 0
		if cap(q.evs) > keepCap {
			q.evs = nil
		} else {
			q.evs = q.evs[:0]
		}
	}
	return ev, true
}
