package postgres

import (
	"slices"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// roomOrder puts announced events back in each room's seq order before the
// listener hands them on. Replicas announce what they committed in batches
// of their own, so a room's events can arrive out of order (seq 8 from one
// replica before seq 7 from another): an event after a gap is held until
// the gap fills, and handed on anyway after holdMax, when the sink reads
// the gap from the log (the event after it committed, so the gap's events
// did too). Duplicates (an event heard twice, or one the sweep already
// covered) are dropped. One goroutine (the listener's) uses it.
type roomOrder struct {
	rooms   map[string]*roomSeq
	holdMax time.Duration
	// publish hands an event on, in seq order per room.
	publish func(chat.Event)
	// holding counts the rooms with held events.
	holding int
}

// roomSeq is one room's place in the order.
type roomSeq struct {
	next    int64        // the seq expected next
	held    []chat.Event // events after a gap, by seq
	since   time.Time    // when the oldest held event arrived
	touched time.Time
}

func newRoomOrder(holdMax time.Duration, publish func(chat.Event)) *roomOrder {
	return &roomOrder{rooms: make(map[string]*roomSeq), holdMax: holdMax, publish: publish}
}

// add takes one announced event.
func (o *roomOrder) add(ev chat.Event, now time.Time) {
	r := o.rooms[ev.RoomID]
	if r == nil {
		// The first event heard from this room: what came before is the
		// subscribers' own reads, or the sink's gap read.
		o.rooms[ev.RoomID] = &roomSeq{next: ev.Seq + 1, touched: now}
		o.publish(ev)
		return
	}
	r.touched = now
	switch {
	case ev.Seq < r.next:
		return // heard already
	case ev.Seq == r.next:
		r.next++
		o.publish(ev)
		o.drain(r)
	default:
		i, found := slices.BinarySearchFunc(r.held, ev.Seq, func(e chat.Event, seq int64) int { return cmpSeq(e.Seq, seq) })
		if found {
			return
		}
		if len(r.held) == 0 {
			r.since = now
			o.holding++
		}
		r.held = slices.Insert(r.held, i, ev)
	}
}

func cmpSeq(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// drain hands on the held events that follow on without a gap.
func (o *roomOrder) drain(r *roomSeq) {
	n := 0
	for n < len(r.held) && r.held[n].Seq <= r.next {
		if r.held[n].Seq == r.next {
			r.next++
			o.publish(r.held[n])
		}
		n++
	}
	if n > 0 {
		r.held = slices.Delete(r.held, 0, n)
		r.since = time.Now()
		if len(r.held) == 0 {
			o.holding--
		}
	}
}

// covered records that the log holds the room's events up to seq (the
// sweep found them, the first of them at first): held events up to it are
// dropped, and if seq was not heard yet a reference to it is handed on, so
// the sink reads the room's log up to there in one read. The reference's
// MissedFrom is the first seq not heard, for the sink's readers that do
// not follow the room (a user stream hears of its user's joins only).
func (o *roomOrder) covered(roomID string, first, seq int64, now time.Time) {
	r := o.rooms[roomID]
	if r == nil {
		// Nothing heard from the room lately: the sweep's earlier windows
		// covered what came before this one.
		o.rooms[roomID] = &roomSeq{next: seq + 1, touched: now}
		o.publish(chat.Event{RoomID: roomID, Seq: seq, MissedFrom: first})
		return
	}
	if seq < r.next {
		return
	}
	r.touched = now
	n := 0
	for n < len(r.held) && r.held[n].Seq <= seq {
		n++
	}
	if n > 0 && n == len(r.held) {
		o.holding--
	}
	r.held = slices.Delete(r.held, 0, n)
	missed := r.next
	r.next = seq + 1
	o.publish(chat.Event{RoomID: roomID, Seq: seq, MissedFrom: missed})
	o.drain(r)
}

// expire hands on the events held longer than holdMax (the sink reads
// their gaps from the log; each event after a gap carries the gap's start
// as MissedFrom), and forgets rooms quiet for forgetAfter. An announcement
// of the gap arriving later is dropped as heard. It returns when the next
// held event expires (zero: none held).
func (o *roomOrder) expire(now time.Time) (next time.Time) {
	for id, r := range o.rooms {
		if len(r.held) > 0 && now.Sub(r.since) >= o.holdMax {
			gap := r.next
			for _, ev := range r.held {
				if ev.Seq > gap {
					ev.MissedFrom = gap
				}
				o.publish(ev)
				gap = ev.Seq + 1
			}
			r.next = r.held[len(r.held)-1].Seq + 1
			r.held = r.held[:0]
			o.holding--
		}
		if len(r.held) > 0 {
			if d := r.since.Add(o.holdMax); next.IsZero() || d.Before(next) {
				next = d
			}
			continue
		}
		if now.Sub(r.touched) > forgetAfter {
			delete(o.rooms, id)
		}
	}
	return next
}

// forgetAfter is how long a quiet room keeps its place: a late duplicate
// after that is handed on again, and the sink drops it.
const forgetAfter = time.Minute

// holdMax is how long an event after a gap waits for the gap's own
// announcement before the listener lets the sink read the gap.
const holdMax = 100 * time.Millisecond
