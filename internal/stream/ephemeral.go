package stream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// signalQueueLen bounds each subscriber's queue of ephemeral events. A
// full one drops new ones: they are lossy by nature (a typing indicator
// from a second ago is worth nothing later), so unlike a durable event,
// falling behind on them does not cut the subscriber off.
const signalQueueLen = 256

// typingSweepEvery is how often (by the batches' clock) the typing
// dedupe forgets pairs older than chat.TypingInterval.
const typingSweepEvery = 10 * time.Second

// Ephemeral fans the ephemeral events every replica announces (typing,
// member.read, presence) out to this replica's live subscribers: never to
// the user an event is about, never before a stream's ready, a room's to
// that room's subscribers, presence to the subscribers of every room the
// subject is a member of, once per subscriber.
//
// It is also where typing is coalesced across replicas. Each replica lets
// through at most one typing per user and room every chat.TypingInterval
// (postgres.Signals), but a user whose requests are spread over replicas
// could get one through on each. So every receiver drops a typing for a
// (user, room) announced less than chat.TypingInterval after the last one
// it let through, timed by the database's clock stamped on each batch.
// Every replica hears the same batches in the same order with the same
// stamps, so every replica lets the same ones through: at most one per 2 s
// reaches any stream, without a database write per keystroke.
//
// DeliverSignals is called by one goroutine, the signal listener's.
type Ephemeral struct {
	hub *Hub
	// queued counts ephemeral events queued for subscribers, one per
	// event and subscriber (apart from the durable events' fan-out count).
	queued atomic.Int64

	mu        sync.Mutex
	typing    map[typingKey]time.Time // last let through, by the batches' clock
	lastSweep time.Time
}

type typingKey struct{ roomID, userID string }

var _ chat.SignalSink = (*Ephemeral)(nil)

// NewEphemeral returns the fan-out of ephemeral events to hub's
// subscribers.
func NewEphemeral(hub *Hub) *Ephemeral {
	return &Ephemeral{hub: hub, typing: make(map[typingKey]time.Time)}
}

// DeliverSignals queues one announced batch for the live subscribers.
func (e *Ephemeral) DeliverSignals(at time.Time, sigs []chat.Signal, rooms map[string][]string) {
	queued := 0
	for _, sig := range sigs {
		if sig.Type == chat.EventTyping && !e.letTypingThrough(at, sig) {
			continue
		}
		ev := sig.Event()
		if sig.Type == chat.EventPresence {
			queued += e.hub.signalUser(ev, rooms[sig.UserID])
		} else {
			queued += e.hub.signalRoom(ev)
		}
	}
	e.queued.Add(int64(queued))
}

// Queued is how many ephemeral events were queued for subscribers so far.
func (e *Ephemeral) Queued() int64 { return e.queued.Load() }

// letTypingThrough reports whether a typing signal stamped at is the first
// for its user and room in chat.TypingInterval, and records it if so.
func (e *Ephemeral) letTypingThrough(at time.Time, sig chat.Signal) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if at.Sub(e.lastSweep) > typingSweepEvery {
		for k, t := range e.typing {
			if at.Sub(t) >= chat.TypingInterval {
				delete(e.typing, k)
			}
		}
		e.lastSweep = at
	}
	k := typingKey{sig.RoomID, sig.UserID}
	if last, ok := e.typing[k]; ok {
		// Batches of different replicas may be stamped slightly out of
		// commit order: within the interval either way is a repeat.
		if d := at.Sub(last); d < chat.TypingInterval && d > -chat.TypingInterval {
			return false
		}
	}
	e.typing[k] = at
	return true
}

// signalRoom queues a room's ephemeral event for the room's live
// subscribers but the user it is about, and returns how many it queued.
func (h *Hub) signalRoom(ev *chat.Event) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[ev.RoomID]
	if r == nil {
		return 0
	}
	n := 0
	for s := range r.subs {
		if s.signalLocked(ev) {
			n++
		}
	}
	return n
}

// signalUser queues a user's ephemeral event (presence) for the live
// subscribers of their rooms, once per subscriber, but not for the user
// themselves, and returns how many it queued.
func (h *Hub) signalUser(ev *chat.Event, rooms []string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	var seen map[*subscription]struct{}
	for _, id := range rooms {
		r := h.rooms[id]
		if r == nil {
			continue
		}
		for s := range r.subs {
			if len(s.rooms) > 1 || s.resync != nil {
				// A user stream may share several rooms with the
				// subject: once is enough.
				if seen == nil {
					seen = make(map[*subscription]struct{})
				}
				if _, dup := seen[s]; dup {
					continue
				}
				seen[s] = struct{}{}
			}
			if s.signalLocked(ev) {
				n++
			}
		}
	}
	return n
}

// signalLocked queues ev for s if s is live and not its subject; a full
// queue drops it. h.mu is held.
func (s *subscription) signalLocked(ev *chat.Event) bool {
	if !s.live || s.ended || s.userID == ev.SubjectID {
		return false
	}
	return s.sigs.push(ev)
}
