package stream

import (
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/chat"
)

func TestQueue(t *testing.T) {
	q := newQueue(3)
	evs := []*chat.Event{{Seq: 1}, {Seq: 2}, {Seq: 3}, {Seq: 4}}
	for _, ev := range evs[:3] {
		if !q.push(ev) {
			t.Fatalf("push seq %d refused below the limit", ev.Seq)
		}
	}
	if q.push(evs[3]) {
		t.Fatal("push beyond the limit accepted")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token with events queued")
	}
	if got := popAll(q); len(got) != 3 || got[0].Seq != 1 || got[2].Seq != 3 {
		t.Fatalf("popped %v, want seqs 1-3", seqs(got))
	}
	select {
	case <-q.ready:
		t.Fatal("ready token left with nothing queued")
	default:
	}
	// Pops make room: pushes and pops interleaved stay within the bound.
	seq := int64(4)
	for range 10 {
		for range 2 {
			if !q.push(&chat.Event{Seq: seq}) {
				t.Fatalf("push seq %d refused", seq)
			}
			seq++
		}
		if ev, ok := q.next(); !ok || ev.Seq != seq-2 {
			t.Fatalf("next = %v, %v, want seq %d", ev, ok, seq-2)
		}
		if c := cap(q.evs); c > 4 {
			t.Fatalf("queue of limit 3 grew to %d slots", c)
		}
		if ev, ok := q.next(); !ok || ev.Seq != seq-1 {
			t.Fatalf("next = %v, %v, want seq %d", ev, ok, seq-1)
		}
	}
}

// popAll pops what is queued.
func popAll(q *queue) []*chat.Event {
	var evs []*chat.Event
	for ev, ok := q.next(); ok; ev, ok = q.next() {
		evs = append(evs, ev)
	}
	return evs
}

// TestQueueConcurrent pushes from one goroutine while another pops after
// every ready token: every event arrives once, in order, and no wake-up is
// lost (the popper would hang).
func TestQueueConcurrent(t *testing.T) {
	const n = 100_000
	q := newQueue(n)
	evs := make([]chat.Event, n)
	for i := range evs {
		evs[i].Seq = int64(i + 1)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range evs {
			if !q.push(&evs[i]) {
				t.Errorf("push seq %d refused", i+1)
				return
			}
		}
	})
	var next int64 = 1
	for next <= n {
		<-q.ready
		for ev, ok := q.next(); ok; ev, ok = q.next() {
			if ev.Seq != next {
				t.Fatalf("got seq %d, want %d", ev.Seq, next)
			}
			next++
		}
	}
	wg.Wait()
}

// TestQueueIdleMemory checks what the queue is for: an idle subscriber's
// queue holds no array, and a drained burst does not stay allocated.
func TestQueueIdleMemory(t *testing.T) {
	q := newQueue(DefaultQueueLen)
	if q.evs != nil {
		t.Fatalf("new queue holds %d slots", cap(q.evs))
	}
	ev := &chat.Event{Seq: 1}
	for range DefaultQueueLen {
		q.push(ev)
	}
	if got := len(popAll(q)); got != DefaultQueueLen {
		t.Fatalf("popped %d events, want %d", got, DefaultQueueLen)
	}
	if c := cap(q.evs); c > keepCap {
		t.Fatalf("drained queue keeps %d slots, want at most %d", c, keepCap)
	}
}

// BenchmarkQueue is the per-subscriber step of a fan-out (one push, its
// wake-up and pop) and a new subscriber's queue, against the 1,024-slot
// channel the queue replaced.
func BenchmarkQueue(b *testing.B) {
	ev := &chat.Event{Seq: 1}
	b.Run("push-pop/queue", func(b *testing.B) {
		q := newQueue(DefaultQueueLen)
		b.ReportAllocs()
		for b.Loop() {
			q.push(ev)
			<-q.ready
			q.next()
		}
	})
	b.Run("push-pop/channel", func(b *testing.B) {
		ch := make(chan *chat.Event, DefaultQueueLen)
		b.ReportAllocs()
		for b.Loop() {
			ch <- ev
			<-ch
		}
	})
	b.Run("new/queue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = newQueue(DefaultQueueLen)
		}
	})
	b.Run("new/channel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = make(chan *chat.Event, DefaultQueueLen)
		}
	})
}
