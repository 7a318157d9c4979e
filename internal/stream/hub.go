// Package stream is the in-process hub of a replica: it keeps the live room
// subscriptions (a room stream's one room, a user stream's many), fans each
// announced event out to the room's subscribers through bounded queues,
// fills gaps and catches up from the event log, and ends subscriptions that
// fall behind or outlive the server. It also keeps a user stream's
// positions across rooms and their cursor (positions.go).
package stream

import (
	"context"
	"log/slog"
	"slices"
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

// Errors a subscription ends with (chat's, so streams can tell them apart).
var (
	ErrSlowConsumer = chat.ErrSlowConsumer
	ErrShutdown     = chat.ErrShutdown
)

// Hub fans room events out to this replica's subscribers. Publish and Resync
// are called by one goroutine (the listener), so per-room order is the order
// of the announcements.
type Hub struct {
	log      chat.EventLog
	logger   *slog.Logger
	queueLen int
	obs      Observer

	mu     sync.Mutex
	rooms  map[string]*room
	closed bool
	// users holds the user streams by user: they hear the user's own
	// member.joined in rooms they are not subscribed to yet.
	users map[string]map[*subscription]struct{}
	nsubs int
	// pending holds rooms whose last log read failed: their subscribers
	// wait for events the hub could not read yet.
	pending map[string]struct{}
	// presence hears each subscription open and close (nil: nobody).
	presence *Presence
}

var (
	_ chat.EventSink        = (*Hub)(nil)
	_ chat.Subscriber       = (*Hub)(nil)
	_ chat.Subscription     = (*subscription)(nil)
	_ chat.UserSubscription = (*subscription)(nil)
)

type room struct {
	// lastSeq is the last seq fanned out (or known to be covered);
	// known is false until the first announcement or resync, before which
	// the subscribers' own log reads cover the past.
	lastSeq int64
	known   bool
	// subs maps each subscriber to its position in this room: it has every
	// event up to there (from its own log reads), so those are not queued.
	subs map[*subscription]int64
}

// Observer hears what the hub does, for metrics. The hub calls it on the
// fan-out path, outside its lock, at most twice per announced event, so its
// methods must be cheap, must not block, and must be safe for concurrent use.
type Observer interface {
	// FannedOut counts events queued for subscribers: one per event and
	// subscriber.
	FannedOut(deliveries int)
	// Delivered reports the time from an announced event's commit (by the
	// database's clock) to the end of its fan-out on this replica; clock
	// skew can make it negative.
	Delivered(lag time.Duration)
}

type nopObserver struct{}

func (nopObserver) FannedOut(int)           {}
func (nopObserver) Delivered(time.Duration) {}

// Option configures a Hub.
type Option func(*Hub)

// WithObserver has the hub report its fan-out to o.
func WithObserver(o Observer) Option { return func(h *Hub) { h.obs = o } }

// WithPresence has the hub tell p about every subscription that opens and
// closes: a user is online while any of their streams is open.
func WithPresence(p *Presence) Option { return func(h *Hub) { h.presence = p } }

// NewHub returns a hub reading gaps and references from log.
func NewHub(log chat.EventLog, logger *slog.Logger, queueLen int, opts ...Option) *Hub {
	if queueLen <= 0 {
		queueLen = DefaultQueueLen
	}
	h := &Hub{log: log, logger: logger, queueLen: queueLen, obs: nopObserver{}, rooms: make(map[string]*room),
		pending: make(map[string]struct{}), users: make(map[string]map[*subscription]struct{})}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *Hub) newSubscription(userID string) *subscription {
	return &subscription{hub: h, userID: userID, q: newQueue(h.queueLen), sigs: newQueue(signalQueueLen), done: make(chan struct{})}
}

// Subscribe registers a subscriber of roomID positioned at after.
func (h *Hub) Subscribe(roomID, userID string, after int64) (chat.Subscription, error) {
	s := h.newSubscription(userID)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShutdown
	}
	h.nsubs++
	h.presence.Opened(userID)
	h.addRoomLocked(s, roomID, after)
	return s, nil
}

// SubscribeUser registers a user stream's subscriber, in no room yet: it
// hears the user's own member.joined in any room, and AddRoom subscribes it
// to rooms. Its one queue serves all its rooms.
func (h *Hub) SubscribeUser(userID string) (chat.UserSubscription, error) {
	s := h.newSubscription(userID)
	s.resync = make(chan struct{}, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShutdown
	}
	h.nsubs++
	h.presence.Opened(userID)
	subs := h.users[userID]
	if subs == nil {
		subs = make(map[*subscription]struct{})
		h.users[userID] = subs
	}
	subs[s] = struct{}{}
	return s, nil
}

// addRoomLocked puts s into roomID's subscribers at position after.
func (h *Hub) addRoomLocked(s *subscription, roomID string, after int64) {
	r := h.rooms[roomID]
	if r == nil {
		r = &room{subs: make(map[*subscription]int64)}
		h.rooms[roomID] = r
	}
	if _, ok := r.subs[s]; !ok {
		s.rooms = append(s.rooms, roomID)
	}
	r.subs[s] = after
}

// removeRoomLocked takes s out of roomID's subscribers.
func (h *Hub) removeRoomLocked(s *subscription, roomID string) {
	if r := h.rooms[roomID]; r != nil {
		delete(r.subs, s)
		if len(r.subs) == 0 {
			delete(h.rooms, roomID)
		}
	}
}

// Publish fans ev out to its room's subscribers, first reading from the log
// any events between the last one fanned out and ev (a gap), and ev itself
// when it came by reference.
//
// User streams not subscribed to the room hear only their user's own
// member.joined in it: the announced one, and any among the events the
// listener missed (ev.MissedFrom), which are read from the log for them
// where the room's own catch-up does not read them.
func (h *Hub) Publish(ctx context.Context, ev chat.Event) {
	join := ev.Type == chat.EventMemberJoined && ev.Data != nil
	h.mu.Lock()
	r := h.rooms[ev.RoomID]
	first, last := h.missedLocked(r, &ev)
	if r == nil || (r.known && ev.Seq <= r.lastSeq) {
		routed := 0
		if join {
			routed = h.routeJoinLocked(r, &ev)
		}
		h.mu.Unlock()
		h.countFannedOut(routed)
		h.routeMissed(ctx, ev.RoomID, first, last)
		return
	}
	if !r.known {
		// Everything before the first announcement heard is covered by
		// the subscribers' own log reads. Recording it now makes a failed
		// read below a gap that the next event or a resync fills.
		r.lastSeq, r.known = ev.Seq-1, true
	}
	from := r.lastSeq
	fast := from == ev.Seq-1 && ev.Data != nil
	routed := 0
	if fast && join {
		// Otherwise catchUp reads it, and routes it then.
		routed = h.routeJoinLocked(r, &ev)
	}
	h.mu.Unlock()
	h.countFannedOut(routed)
	h.routeMissed(ctx, ev.RoomID, first, last)
	delivered := true
	if fast {
		h.fanOut(ev.RoomID, []*chat.Event{&ev})
	} else {
		delivered = h.catchUp(ctx, ev.RoomID, from, ev.Seq)
	}
	if delivered && !ev.CommittedAt.IsZero() {
		h.obs.Delivered(time.Since(ev.CommittedAt))
	}
}

// missedLocked is the run of seqs [first, last] before or at ev that the
// listener missed and that no catch-up of the room reads (none: last <
// first), for the user streams' joins: all of ev.MissedFrom's run when
// nobody here follows the room, the part before ev when this is the first
// event of the room the hub hears (its subscribers read the past
// themselves), nothing when the hub follows the room already (catchUp
// reads from the last event fanned out) or has no user streams.
func (h *Hub) missedLocked(r *room, ev *chat.Event) (first, last int64) {
	if ev.MissedFrom <= 0 || len(h.users) == 0 || (r != nil && r.known) {
		return 0, -1
	}
	last = ev.Seq - 1
	if r == nil && ev.Data == nil {
		last = ev.Seq // a reference: nobody reads it
	}
	return ev.MissedFrom, last
}

// routeMissed reads the room's events [first, last] from the log and routes
// the member.joined among them to their users' streams (see
// routeJoinLocked). If the log cannot be read, every user stream is told to
// re-read its memberships instead, as after a resync.
func (h *Hub) routeMissed(ctx context.Context, roomID string, first, last int64) {
	for from := first - 1; from < last; {
		limit := int(min(readPage, last-from))
		evs, err := h.readEvents(ctx, roomID, from, limit)
		if err != nil {
			h.logger.Warn("read missed room events for user streams; they re-read their memberships", "room_id", roomID,
				"after", from, "err", err)
			h.mu.Lock()
			h.resyncUsersLocked()
			h.mu.Unlock()
			return
		}
		h.routeJoins(roomID, evs)
		if len(evs) < limit {
			return
		}
		from = evs[len(evs)-1].Seq
	}
}

// routeJoins routes the member.joined among evs, read from the room's log,
// to their users' streams.
func (h *Hub) routeJoins(roomID string, evs []chat.Event) {
	routed := 0
	h.mu.Lock()
	if len(h.users) > 0 {
		r := h.rooms[roomID]
		for i := range evs {
			if ev := &evs[i]; ev.Type == chat.EventMemberJoined && ev.Data != nil {
				routed += h.routeJoinLocked(r, ev)
			}
		}
	}
	h.mu.Unlock()
	h.countFannedOut(routed)
}

// countFannedOut reports n deliveries, outside the lock.
func (h *Hub) countFannedOut(n int) {
	if n > 0 {
		h.obs.FannedOut(n)
	}
}

// routeJoinLocked queues a user's own member.joined for their user streams
// not yet subscribed to the room (r, nil when nobody is), which then
// subscribe and read the room from the log. Publish routes announced joins,
// and joins read from the log (catchUp, routeMissed); a join still missed
// (the listener was down) is found by the stream's own re-reads of its
// memberships (see Resync). It returns how many it queued.
func (h *Hub) routeJoinLocked(r *room, ev *chat.Event) (queued int) {
	for s := range h.users[ev.SubjectID] {
		if r != nil {
			if _, in := r.subs[s]; in {
				continue // it hears the room's events anyway
			}
		}
		if !s.q.push(ev) {
			h.removeLocked(s, ErrSlowConsumer)
			continue
		}
		queued++
	}
	return queued
}

// Resync catches every subscribed room up from the log: from the last seq
// fanned out, or for a room with none yet, from its earliest subscriber.
// User streams are told to re-read their memberships, since joins to rooms
// they were not subscribed to may have been missed.
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
			for _, after := range r.subs {
				if r.lastSeq < 0 || after < r.lastSeq {
					r.lastSeq = after
				}
			}
			r.known = true
		}
		jobs = append(jobs, job{id, r.lastSeq})
	}
	h.resyncUsersLocked()
	h.mu.Unlock()
	for _, j := range jobs {
		h.catchUp(ctx, j.roomID, j.from, 0)
	}
}

// resyncUsersLocked tells every user stream to re-read its memberships.
func (h *Hub) resyncUsersLocked() {
	for _, subs := range h.users {
		for s := range subs {
			select {
			case s.resync <- struct{}{}:
			default: // one is already pending
			}
		}
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
// the end of the log). It reports false when a log read failed.
func (h *Hub) catchUp(ctx context.Context, roomID string, from, until int64) bool {
	for {
		limit := readPage
		if until > 0 && until-from < int64(limit) {
			limit = int(until - from)
		}
		if limit <= 0 {
			return true
		}
		evs, err := h.readEvents(ctx, roomID, from, limit)
		if err != nil {
			// Give up for now: the room's lastSeq did not move, and Retry
			// (or the room's next event) reads on from there.
			h.logger.Warn("read room events", "room_id", roomID, "after", from, "err", err)
			h.mu.Lock()
			h.pending[roomID] = struct{}{}
			h.mu.Unlock()
			return false
		}
		batch := make([]*chat.Event, len(evs))
		for i := range evs {
			batch[i] = &evs[i]
		}
		h.fanOut(roomID, batch)
		h.routeJoins(roomID, evs)
		if len(evs) < limit {
			return true
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
	n := h.fanOutLocked(roomID, evs)
	h.mu.Unlock()
	if n > 0 {
		h.obs.FannedOut(n)
	}
}

// fanOutLocked is fanOut with h.mu held; it returns how many events it
// queued, counted in a local so the count costs no lock or allocation.
func (h *Hub) fanOutLocked(roomID string, evs []*chat.Event) (queued int) {
	r := h.rooms[roomID]
	if r == nil {
		return 0
	}
	for _, ev := range evs {
		if r.known && ev.Seq <= r.lastSeq {
			continue
		}
		r.lastSeq, r.known = ev.Seq, true
		for s, after := range r.subs {
			if ev.Seq <= after {
				continue // it read this one from the log itself
			}
			if !s.q.push(ev) {
				h.removeLocked(s, ErrSlowConsumer)
				continue
			}
			queued++
		}
	}
	return queued
}

// removeLocked ends s with err; h.mu is held.
func (h *Hub) removeLocked(s *subscription, err error) {
	if s.ended {
		return
	}
	s.ended = true
	for _, id := range s.rooms {
		h.removeRoomLocked(s, id)
	}
	s.rooms = nil
	if s.resync != nil {
		subs := h.users[s.userID]
		delete(subs, s)
		if len(subs) == 0 {
			delete(h.users, s.userID)
		}
	}
	h.nsubs--
	h.presence.Closed(s.userID)
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
	for _, subs := range h.users {
		for s := range subs {
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
	return Stats{Rooms: len(h.rooms), Subscribers: h.nsubs}
}

// subscription is a room stream's (one room) or a user stream's (any
// number of rooms, resync set) subscriber.
type subscription struct {
	hub    *Hub
	userID string
	q      *queue
	// sigs queues ephemeral events, once live is set (guarded by
	// hub.mu); a full one drops them.
	sigs   *queue
	live   bool
	done   chan struct{}
	resync chan struct{} // user streams only
	// Guarded by hub.mu: the rooms it is in (its positions are in each
	// room's subs), whether it ended, and why (set before done closes).
	rooms []string
	ended bool
	err   error
}

func (s *subscription) Ready() <-chan struct{}    { return s.q.ready }
func (s *subscription) Next() (*chat.Event, bool) { return s.q.next() }
func (s *subscription) Done() <-chan struct{}     { return s.done }

func (s *subscription) Signals() <-chan struct{}        { return s.sigs.ready }
func (s *subscription) NextSignal() (*chat.Event, bool) { return s.sigs.next() }

func (s *subscription) GoLive() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.live = true
}

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
	if len(s.rooms) == 1 {
		s.advanceLocked(s.rooms[0], seq)
	}
}

func (s *subscription) AdvanceRoom(roomID string, seq int64) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.advanceLocked(roomID, seq)
}

func (s *subscription) advanceLocked(roomID string, seq int64) {
	if r := s.hub.rooms[roomID]; r != nil {
		if after, ok := r.subs[s]; ok && seq > after {
			r.subs[s] = seq
		}
	}
}

func (s *subscription) Resync() <-chan struct{} { return s.resync }

func (s *subscription) AddRoom(roomID string, after int64) error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if s.ended {
		if s.err != nil {
			return s.err
		}
		return ErrShutdown
	}
	s.hub.addRoomLocked(s, roomID, after)
	return nil
}

func (s *subscription) RemoveRoom(roomID string) {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if i := slices.Index(s.rooms, roomID); i >= 0 {
		s.rooms = slices.Delete(s.rooms, i, i+1)
		s.hub.removeRoomLocked(s, roomID)
	}
}

func (s *subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s, nil)
}
