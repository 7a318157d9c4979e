// Package stream is the in-process hub of a replica: it keeps the live room
// subscriptions, fans each announced event out to the room's subscribers
// through bounded queues, fills gaps and catches up from the event log, and
// ends subscriptions that fall behind or outlive the server.
package stream

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// DefaultQueueLen bounds each subscriber's queue of undelivered events.
const DefaultQueueLen = 1024

// readPage is how many events one log read fetches when catching up.
const readPage = 500

// readAttempts bounds the retries of one log read, and readTimeout each
// attempt: the listener waits for these reads, so a hung one must not
// stall every room of the replica.
const (
	readAttempts = 8
	readTimeout  = 2 * time.Second
)

// Errors a subscription ends with.
var (
	ErrSlowConsumer = chat.Errorf(chat.EUnavailable, "subscriber fell behind; resume with Last-Event-ID")
	ErrShutdown     = chat.Errorf(chat.EUnavailable, "server shutting down; reconnect")
)

// Hub fans room events out to this replica's subscribers. Publish and Resync
// are called by one goroutine (the listener), so per-room order is the order
// of the announcements.
type Hub struct {
	log      chat.EventLog
	logger   *slog.Logger
	queueLen int

	mu     sync.Mutex
	rooms  map[string]*room
	closed bool
	// pending holds rooms whose last log read failed: their subscribers
	// wait for events the hub could not read yet.
	pending map[string]struct{}
}

var (
	_ chat.EventSink  = (*Hub)(nil)
	_ chat.Subscriber = (*Hub)(nil)
)

type room struct {
	// lastSeq is the last seq fanned out (or known to be covered);
	// known is false until the first announcement or resync, before which
	// the subscribers' own log reads cover the past.
	lastSeq int64
	known   bool
	subs    map[*subscription]struct{}
}

// NewHub returns a hub reading gaps and references from log.
func NewHub(log chat.EventLog, logger *slog.Logger, queueLen int) *Hub {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	return &Hub{log: log, logger: logger, queueLen: queueLen, rooms: make(map[string]*room), pending: make(map[string]struct{})}
}

// Subscribe registers a subscriber of roomID positioned at after.
func (h *Hub) Subscribe(roomID, userID string, after int64) (chat.Subscription, error) {
	s := &subscription{hub: h, roomID: roomID, userID: userID, after: after,
		ch: make(chan *chat.Event, h.queueLen), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShutdown
	}
	r := h.rooms[roomID]
	if r == nil {
		r = &room{subs: make(map[*subscription]struct{})}
		h.rooms[roomID] = r
	}
	r.subs[s] = struct{}{}
	return s, nil
}

// Publish fans ev out to its room's subscribers, first reading from the log
// any events between the last one fanned out and ev (a gap), and ev itself
// when it came by reference.
func (h *Hub) Publish(ctx context.Context, ev chat.Event) {
	h.mu.Lock()
	r := h.rooms[ev.RoomID]
	if r == nil || (r.known && ev.Seq <= r.lastSeq) {
		h.mu.Unlock()
		return
	}
	if !r.known {
		// Everything before the first announcement heard is covered by
		// the subscribers' own log reads. Recording it now makes a failed
		// read below a gap that the next event or a resync fills.
		r.lastSeq, r.known = ev.Seq-1, true
	}
	from := r.lastSeq
	h.mu.Unlock()
	if from == ev.Seq-1 && ev.Data != nil {
		h.fanOut(ev.RoomID, []*chat.Event{&ev})
		return
	}
	h.catchUp(ctx, ev.RoomID, from, ev.Seq)
}

// Resync catches every subscribed room up from the log: from the last seq
// fanned out, or for a room with none yet, from its earliest subscriber.
func (h *Hub) Resync(ctx context.Context) {
	type job struct {
		roomID string
		from   int64
	}
	var jobs []job
	h.mu.Lock()
	for id, r := range h.rooms {
		if !r.known {
			// Nothing fanned out yet: start from the earliest subscriber.
			r.lastSeq = -1
			for s := range r.subs {
				if r.lastSeq < 0 || s.after < r.lastSeq {
					r.lastSeq = s.after
				}
			}
			r.known = true
		}
		jobs = append(jobs, job{id, r.lastSeq})
	}
	h.mu.Unlock()
	for _, j := range jobs {
		h.catchUp(ctx, j.roomID, j.from, 0)
	}
}

// Retry catches up every room whose last log read failed, to the end of
// its log, and reports whether any read failed again.
func (h *Hub) Retry(ctx context.Context) bool {
	h.mu.Lock()
	type job struct {
		roomID string
		from   int64
	}
	var jobs []job
	for id := range h.pending {
		delete(h.pending, id)
		if r := h.rooms[id]; r != nil && r.known {
			jobs = append(jobs, job{id, r.lastSeq})
		}
	}
	h.mu.Unlock()
	for _, j := range jobs {
		h.catchUp(ctx, j.roomID, j.from, 0)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pending) > 0
}

// catchUp fans out the room's logged events after from, up to until (0: to
// the end of the log).
func (h *Hub) catchUp(ctx context.Context, roomID string, from, until int64) {
	for {
		limit := readPage
		if until > 0 && until-from < int64(limit) {
			limit = int(until - from)
		}
		if limit <= 0 {
			return
		}
		evs, err := h.readEvents(ctx, roomID, from, limit)
		if err != nil {
			// Give up for now: the room's lastSeq did not move, and Retry
			// (or the room's next event) reads on from there.
			h.logger.Warn("read room events", "room_id", roomID, "after", from, "err", err)
			h.mu.Lock()
			h.pending[roomID] = struct{}{}
			h.mu.Unlock()
			return
		}
		batch := make([]*chat.Event, len(evs))
		for i := range evs {
			batch[i] = &evs[i]
		}
		h.fanOut(roomID, batch)
		if len(evs) < limit {
			return
		}
		from = evs[len(evs)-1].Seq
	}
}

// readEvents reads from the log, retrying with backoff for a few seconds
// while the database is briefly unreachable.
func (h *Hub) readEvents(ctx context.Context, roomID string, after int64, limit int) ([]chat.Event, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		evs, err := h.log.ReadEvents(rctx, roomID, after, limit)
		cancel()
		if err == nil || attempt == readAttempts || ctx.Err() != nil {
			return evs, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// fanOut queues evs, in order, for every subscriber of the room, cutting off
// a subscriber whose queue is full rather than waiting for it.
func (h *Hub) fanOut(roomID string, evs []*chat.Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[roomID]
	if r == nil {
		return
	}
	for _, ev := range evs {
		if r.known && ev.Seq <= r.lastSeq {
			continue
		}
		r.lastSeq, r.known = ev.Seq, true
		for s := range r.subs {
			if ev.Seq <= s.after {
				continue // it read this one from the log itself
			}
			select {
			case s.ch <- ev:
			default:
				h.removeLocked(s, ErrSlowConsumer)
			}
		}
	}
}

// removeLocked ends s with err; h.mu is held.
func (h *Hub) removeLocked(s *subscription, err error) {
	r := h.rooms[s.roomID]
	if r == nil {
		return
	}
	if _, ok := r.subs[s]; !ok {
		return
	}
	delete(r.subs, s)
	if len(r.subs) == 0 {
		delete(h.rooms, s.roomID)
	}
	s.err = err
	close(s.done)
}

// Close ends every subscription (their streams end so clients reconnect
// elsewhere) and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, r := range h.rooms {
		for s := range r.subs {
			h.removeLocked(s, ErrShutdown)
		}
	}
}

// Stats is a snapshot of the hub's size.
type Stats struct {
	Rooms, Subscribers int
}

// Stats counts rooms and subscribers.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Stats{Rooms: len(h.rooms)}
	for _, r := range h.rooms {
		st.Subscribers += len(r.subs)
	}
	return st
}

type subscription struct {
	hub            *Hub
	roomID, userID string
	after          int64 // the subscriber has every event up to here; guarded by hub.mu
	ch             chan *chat.Event
	done           chan struct{}
	err            error // set before done closes
}

func (s *subscription) Events() <-chan *chat.Event { return s.ch }
func (s *subscription) Done() <-chan struct{}      { return s.done }

func (s *subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

func (s *subscription) Advance(seq int64) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.after = max(s.after, seq)
}

func (s *subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s, nil)
}
