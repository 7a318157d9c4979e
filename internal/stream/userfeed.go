package stream

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
	"unique"

	"github.com/parley-chat/parley/internal/chat"
)

// UserFeed is the engine of one user stream: it keeps the stream's position
// in each of the user's rooms, walks each room's events in seq order
// (deciding which are the user's from their own member.joined and
// member.left), subscribes to rooms as the user joins them and leaves them
// after the user's own member.left, and writes the positions down as a
// cursor after every event it emits (see chat.UserCursor).
//
// Only its owner's goroutine calls it: Start, then Handle for each event
// from Events, and Rebase when Resync signals or RebaseDue says so.
type UserFeed struct {
	userID string
	sub    chat.UserSubscription
	log    chat.EventLog
	base   chat.UserStreamLog
	codec  *chat.CursorCodec
	emit   func(ev *chat.Event, cursor string) error

	horizon uint64
	rooms   map[string]*feedRoom
	// raw is the cursor's size before base64 with the listed rooms.
	raw        int
	deferred   int
	lastRebase time.Time
}

// feedRoom is the feed's state in one room.
type feedRoom struct {
	id      string
	ordinal int64
	// sent: the stream has every event of the user's up to here.
	sent int64
	// base is the room's base under the feed's horizon.
	base int64
	// periods are the user's memberships that may hold events beyond
	// min(sent, base), by Joined.
	periods []chat.Period
	entry   int32 // its size in the cursor when listed
	// member: the events after sent are the user's (until their leave).
	member     bool
	subscribed bool
	// listed: the cursor lists the room (sent and base differ by events
	// of the user's).
	listed bool
	// deferred: the room would not fit in the cursor; its events are
	// read from the log at each rebase, up to its base.
	deferred bool
}

// roomID interns a room id: every feed (and the hub) following a room
// shares one copy, as a replica's streams share their rooms.
func roomID(id string) string { return unique.Make(id).Value() }

// Feed timing and sizes.
const (
	// feedPage is how many events one log read of a room fetches.
	feedPage = 100
	// rebaseSoftRaw: a cursor larger than this (before base64) asks for a
	// rebase soon, at most every rebaseSoonEvery; any listed room asks for
	// one every rebaseEvery, to keep ids short.
	rebaseSoftRaw   = 96
	rebaseSoonEvery = 250 * time.Millisecond
	rebaseEvery     = 5 * time.Second
	// cursorReserve keeps room in the cursor for the one room being read
	// from the log while the others are at their limit.
	cursorReserve = 2 * 10
)

// UserFeeds opens user feeds on a hub.
type UserFeeds struct {
	hub   *Hub
	log   chat.EventLog
	base  chat.UserStreamLog
	codec *chat.CursorCodec
}

var (
	_ chat.UserFeeds = (*UserFeeds)(nil)
	_ chat.UserFeed  = (*UserFeed)(nil)
)

// NewUserFeeds returns feeds on hub reading log and base, writing cursors
// with codec.
func NewUserFeeds(hub *Hub, log chat.EventLog, base chat.UserStreamLog, codec *chat.CursorCodec) *UserFeeds {
	return &UserFeeds{hub: hub, log: log, base: base, codec: codec}
}

// OpenUserFeed subscribes userID's stream to the hub (before anything is
// read, so a join committed after the reads reaches it) and returns its
// feed, emitting through emit (which writes one frame).
func (fs *UserFeeds) OpenUserFeed(userID string, emit func(ev *chat.Event, cursor string) error) (chat.UserFeed, error) {
	sub, err := fs.hub.SubscribeUser(userID)
	if err != nil {
		return nil, err
	}
	return NewUserFeed(userID, sub, fs.log, fs.base, fs.codec, emit), nil
}

// NewUserFeed returns the feed of userID's stream on sub, emitting through
// emit.
func NewUserFeed(userID string, sub chat.UserSubscription, log chat.EventLog, base chat.UserStreamLog, codec *chat.CursorCodec,
	emit func(ev *chat.Event, cursor string) error) *UserFeed {
	return &UserFeed{userID: userID, sub: sub, log: log, base: base, codec: codec, emit: emit, rooms: make(map[string]*feedRoom)}
}

// Ready and Next are the subscription's queued events, for Handle.
func (f *UserFeed) Ready() <-chan struct{}    { return f.sub.Ready() }
func (f *UserFeed) Next() (*chat.Event, bool) { return f.sub.Next() }

// Resync, Done, Err and Close are the subscription's.
func (f *UserFeed) Resync() <-chan struct{} { return f.sub.Resync() }
func (f *UserFeed) Done() <-chan struct{}   { return f.sub.Done() }
func (f *UserFeed) Err() error              { return f.sub.Err() }
func (f *UserFeed) Close()                  { f.sub.Close() }

// Signals, NextSignal and GoLive are the subscription's ephemeral events.
func (f *UserFeed) Signals() <-chan struct{}        { return f.sub.Signals() }
func (f *UserFeed) NextSignal() (*chat.Event, bool) { return f.sub.NextSignal() }
func (f *UserFeed) GoLive()                         { f.sub.GoLive() }

// Start places the feed at cur (nil: live) and replays from the log what
// the user missed in every room, emitting each event. It returns the
// cursor to send with ready.
func (f *UserFeed) Start(ctx context.Context, cur *chat.UserCursor) (string, error) {
	var tracked []chat.RoomPosition
	var old uint64
	if cur != nil {
		old, tracked = cur.Horizon, cur.Rooms
	}
	b, err := f.base.StreamBase(ctx, f.userID, old, 0, tracked)
	if err != nil {
		return "", err
	}
	if cur != nil && cur.Horizon > b.Horizon {
		// From ahead of the log (not issued here, or the database went
		// back): start live.
		cur = nil
		if b, err = f.base.StreamBase(ctx, f.userID, 0, 0, nil); err != nil {
			return "", err
		}
	}
	f.horizon = b.Horizon
	f.raw = chat.CursorFixedLen(f.horizon)
	for _, br := range b.Rooms {
		r := &feedRoom{id: roomID(br.RoomID), ordinal: br.Ordinal, base: br.Base, periods: br.Periods}
		switch {
		case cur == nil:
			r.sent = br.LastSeq // live
		case br.Tracked >= 0:
			r.sent = min(br.Tracked, br.LastSeq) // a room ahead of its log starts live
		default:
			r.sent = br.OldBase
		}
		r.member = memberAt(r.periods, r.sent)
		f.rooms[r.id] = r
	}
	f.lastRebase = time.Now()
	if err := f.settle(ctx); err != nil {
		return "", err
	}
	return f.cursor(), nil
}

// memberAt reports whether the events right after seq are the user's.
func memberAt(periods []chat.Period, seq int64) bool {
	for _, p := range periods {
		if p.Joined <= seq && (p.Left == 0 || seq < p.Left) {
			return true
		}
	}
	return false
}

// owes reports whether a period may hold events of the user's after seq.
func owes(periods []chat.Period, seq int64) bool {
	for _, p := range periods {
		if p.Left == 0 || p.Left > seq {
			return true
		}
	}
	return false
}

// settle brings every room in line after Start or a rebase: subscribes to
// the rooms the user is in, reads from the log what each owes (deferred
// rooms only up to their base), and forgets rooms that owe nothing.
func (f *UserFeed) settle(ctx context.Context) error {
	rooms := make([]*feedRoom, 0, len(f.rooms))
	for _, r := range f.rooms {
		rooms = append(rooms, r)
	}
	// Lagging rooms first: reading them up to their base shrinks the
	// cursor before others may grow it.
	slices.SortFunc(rooms, func(a, b *feedRoom) int { return cmp.Compare(a.sent-a.base, b.sent-b.base) })
	for _, r := range rooms {
		f.relist(r)
	}
	for _, r := range rooms {
		if r.deferred && f.fits(r) {
			r.deferred = false
			f.deferred--
		}
		open := owes(r.periods, r.sent) && hasOpen(r.periods)
		switch {
		case r.deferred:
			if err := f.catchUp(ctx, r, r.base, false); err != nil {
				return err
			}
		case open && !r.subscribed:
			if err := f.sub.AddRoom(r.id, r.sent); err != nil {
				return err
			}
			r.subscribed = true
			if err := f.catchUp(ctx, r, toEnd, true); err != nil {
				return err
			}
		case open:
			// The hub queues what follows; a room that lags behind its
			// base is read up to it from the log only when the cursor is
			// too full to list it meanwhile.
			if r.listed && r.sent < r.base && !chat.CursorFits(f.raw+cursorReserve) {
				if err := f.catchUp(ctx, r, r.base, false); err != nil {
					return err
				}
			}
		case owes(r.periods, r.sent):
			// Only closed periods: read up to the last leave.
			if err := f.catchUp(ctx, r, r.periods[len(r.periods)-1].Left, true); err != nil {
				return err
			}
		}
		f.forgetIfDone(r)
	}
	return nil
}

func hasOpen(periods []chat.Period) bool {
	return len(periods) > 0 && periods[len(periods)-1].Left == 0
}

// fits reports whether listing r too keeps the cursor within its limit,
// with room left for one more.
func (f *UserFeed) fits(r *feedRoom) bool {
	if r.listed {
		return true
	}
	return chat.CursorFits(f.raw + f.entryBound(r) + cursorReserve)
}

// forgetIfDone drops a room the user is no longer in once the cursor need
// not list it.
func (f *UserFeed) forgetIfDone(r *feedRoom) {
	if r.subscribed || r.listed || r.deferred || owes(r.periods, max(r.sent, r.base)) {
		return
	}
	delete(f.rooms, r.id)
}

// toEnd is catchUp's until for "to the end of the log".
const toEnd = math.MaxInt64

// catchUp reads r's events after r.sent from the log, up to until, and
// walks them. With budget it holds the room back (defers it) instead of
// growing a full cursor; without, it is reading a deferred room up to its
// base, through the cursor's reserve.
func (f *UserFeed) catchUp(ctx context.Context, r *feedRoom, until int64, budget bool) error {
	for r.sent < until {
		limit := int(min(feedPage, until-r.sent))
		evs, err := f.log.ReadEvents(ctx, r.id, r.sent, limit)
		if err != nil {
			return fmt.Errorf("read room %s events: %w", r.id, err)
		}
		for i := range evs {
			if err := f.walk(r, &evs[i], budget); err != nil {
				return err
			}
			if budget && r.deferred {
				return nil
			}
		}
		if r.subscribed {
			f.sub.AdvanceRoom(r.id, r.sent)
		}
		if len(evs) < limit {
			return nil
		}
	}
	return nil
}

// Handle takes one event from Events.
func (f *UserFeed) Handle(ctx context.Context, ev *chat.Event) error {
	r := f.rooms[ev.RoomID]
	if ev.Type == chat.EventMemberJoined && ev.SubjectID == f.userID && (r == nil || !r.subscribed) {
		// The user joined a room the feed is not subscribed to.
		if r == nil {
			// Unknown: its ordinal and periods come with a rebase.
			return f.Rebase(ctx)
		}
		if r.deferred || ev.Seq <= r.sent {
			return nil
		}
		if !slices.ContainsFunc(r.periods, func(p chat.Period) bool { return p.Joined == ev.Seq }) {
			r.periods = append(r.periods, chat.Period{Joined: ev.Seq})
		}
		if err := f.sub.AddRoom(r.id, r.sent); err != nil {
			return err
		}
		r.subscribed = true
		return f.catchUp(ctx, r, toEnd, true)
	}
	if r == nil || r.deferred || ev.Seq <= r.sent {
		return nil
	}
	if ev.Seq != r.sent+1 {
		// Not the next one: read the room from the log instead.
		if !r.subscribed {
			return nil
		}
		return f.catchUp(ctx, r, toEnd, true)
	}
	return f.walk(r, ev, true)
}

// walk takes r's next event: emits it if it is the user's, follows the
// user's joins and leaves, and moves the position. With budget, a room
// whose event would not fit in the cursor is deferred instead.
func (f *UserFeed) walk(r *feedRoom, ev *chat.Event, budget bool) error {
	if ev.Seq <= r.sent {
		return nil
	}
	own := ev.SubjectID == f.userID
	joins := ev.Type == chat.EventMemberJoined && own
	ends := ev.Type == chat.EventRoomDeleted || (ev.Type == chat.EventMemberLeft && own)
	if !r.member && !joins {
		r.sent = ev.Seq // not the user's
		f.relist(r)
		return nil
	}
	if budget && !r.listed && !f.fits(r) {
		// Emitting would list the room, and the cursor is full: hold the
		// room back; rebases read it from the log up to its base.
		f.deferRoom(r)
		return nil
	}
	if joins {
		r.member = true
		if !slices.ContainsFunc(r.periods, func(p chat.Period) bool { return p.Joined == ev.Seq }) {
			r.periods = append(r.periods, chat.Period{Joined: ev.Seq})
		}
	}
	r.sent = ev.Seq
	if ends {
		r.member = false
		// Close the period this event ends (the log may already know
		// of later ones).
		for i := len(r.periods) - 1; i >= 0; i-- {
			if p := &r.periods[i]; p.Joined < ev.Seq {
				if p.Left == 0 {
					p.Left = ev.Seq
				}
				break
			}
		}
	}
	f.relist(r)
	if err := f.emit(ev, f.cursor()); err != nil {
		return err
	}
	if ends && r.subscribed {
		f.sub.RemoveRoom(r.id)
		r.subscribed = false
	}
	return nil
}

func (f *UserFeed) deferRoom(r *feedRoom) {
	if r.deferred {
		return
	}
	r.deferred = true
	f.deferred++
	if r.subscribed {
		f.sub.RemoveRoom(r.id)
		r.subscribed = false
	}
}

// relist recomputes whether the cursor must list r: whether any event of
// the user's lies between its position and its base.
func (f *UserFeed) relist(r *feedRoom) {
	lo, hi := min(r.sent, r.base), max(r.sent, r.base)
	listed := false
	for _, p := range r.periods {
		end := hi
		if p.Left != 0 {
			end = min(end, p.Left)
		}
		if max(p.Joined, lo+1) <= end {
			listed = true // p holds an event in (lo, hi]
			break
		}
	}
	f.raw -= int(r.entry)
	r.listed, r.entry = listed, 0
	if listed {
		r.entry = int32(chat.CursorRoomLen(chat.RoomPosition{Ordinal: r.ordinal, Seq: r.sent}))
		f.raw += int(r.entry)
	}
}

// cursor encodes the current positions.
func (f *UserFeed) cursor() string {
	cur := chat.UserCursor{Horizon: f.horizon}
	for _, r := range f.rooms {
		if r.listed {
			cur.Rooms = append(cur.Rooms, chat.RoomPosition{Ordinal: r.ordinal, Seq: r.sent})
		}
	}
	slices.SortFunc(cur.Rooms, func(a, b chat.RoomPosition) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	return f.codec.Encode(cur)
}

// Cursor is the cursor of the positions now.
func (f *UserFeed) Cursor() string { return f.cursor() }

// RebaseDue reports whether a rebase would shrink the cursor now, and
// when to ask again otherwise.
func (f *UserFeed) RebaseDue(now time.Time) (bool, time.Duration) {
	since := now.Sub(f.lastRebase)
	switch {
	case f.deferred > 0 || f.raw > rebaseSoftRaw:
		return since >= rebaseSoonEvery, rebaseSoonEvery - since
	case f.raw > chat.CursorFixedLen(f.horizon):
		return since >= rebaseEvery, rebaseEvery - since
	}
	return false, rebaseEvery
}

// Rebase reads a fresh horizon and the bases of the user's rooms, picks up
// rooms the user joined that the feed has not heard of, and settles.
//
// A horizon that jumps forward puts every room whose next events it
// passes behind its base at once: the rooms held back (deferred) and the
// rooms whose events the hub has not delivered yet. The cursor would have
// to list them all, so when it could not, Rebase caps the horizon to let
// through only as many of them as it can list (see capHorizon). While
// rooms are held back it goes on at once with the next ones, as only
// rebases bring those forward; the others the hub brings.
func (f *UserFeed) Rebase(ctx context.Context) error {
	for range f.deferred + 1 {
		limit, err := f.capHorizon(ctx)
		if err != nil {
			return err
		}
		if err := f.rebase(ctx, limit); err != nil {
			return err
		}
		if limit == 0 || f.deferred == 0 {
			return nil
		}
	}
	return nil
}

// capHorizon picks the cap for the next rebase (0: none). When the cursor
// could not list every room at once, it reads the hx of each room's next
// event and lets the rooms through in that order, whole transactions at a
// time, as many as fit beside what the cursor lists now, and at least the
// first transaction above the current horizon, which the cursor's reserve
// has room for.
func (f *UserFeed) capHorizon(ctx context.Context) (uint64, error) {
	// A first pass that allocates nothing: a rebase almost always fits.
	all := f.raw
	for _, r := range f.rooms {
		if !r.listed {
			all += f.entryBound(r)
		}
	}
	if chat.CursorFits(all + cursorReserve) {
		return 0, nil
	}
	at := make([]chat.RoomPosition, 0, len(f.rooms))
	entry := make(map[int64]int, len(f.rooms))
	for _, r := range f.rooms {
		if !r.listed {
			at = append(at, chat.RoomPosition{Ordinal: r.ordinal, Seq: r.sent})
			entry[r.ordinal] = f.entryBound(r)
		}
	}
	now, next, err := f.base.HeldHorizons(ctx, at)
	if err != nil {
		return 0, err
	}
	type nextEvent struct {
		hx    uint64
		entry int
	}
	evs := make([]nextEvent, 0, len(next))
	for ord, hx := range next {
		evs = append(evs, nextEvent{hx: hx, entry: entry[ord]})
	}
	slices.SortFunc(evs, func(a, b nextEvent) int { return cmp.Compare(a.hx, b.hx) })
	raw := f.raw
	through := false // a transaction above the current horizon let through
	for i := 0; i < len(evs); {
		hx := evs[i].hx
		if hx >= now {
			return 0, nil // the rest stay above the horizon anyway
		}
		add := 0
		j := i
		for ; j < len(evs) && evs[j].hx == hx; j++ {
			add += evs[j].entry
		}
		if hx >= f.horizon {
			// Rooms below the current horizon come through whatever the
			// cap.
			if through && !chat.CursorFits(raw+add+cursorReserve) {
				return hx, nil // let through what lies below this one
			}
			through = true
		}
		raw += add
		i = j
	}
	return 0, nil
}

// entryBound is at most what listing r adds to the cursor while its
// position moves on by up to 2^20 events.
func (f *UserFeed) entryBound(r *feedRoom) int {
	return chat.CursorRoomLen(chat.RoomPosition{Ordinal: r.ordinal, Seq: r.sent + 1<<20})
}

// rebase reads the horizon (capped at limit unless 0) and the bases, and
// settles.
func (f *UserFeed) rebase(ctx context.Context, limit uint64) error {
	tracked := make([]chat.RoomPosition, 0, len(f.rooms))
	for _, r := range f.rooms {
		tracked = append(tracked, chat.RoomPosition{Ordinal: r.ordinal, Seq: r.sent})
	}
	slices.SortFunc(tracked, func(a, b chat.RoomPosition) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	b, err := f.base.StreamBase(ctx, f.userID, f.horizon, limit, tracked)
	f.lastRebase = time.Now()
	if err != nil {
		return err
	}
	if b.Horizon < f.horizon {
		return fmt.Errorf("horizon went back from %d to %d", f.horizon, b.Horizon)
	}
	f.horizon = b.Horizon
	f.raw = chat.CursorFixedLen(f.horizon)
	for _, r := range f.rooms {
		// A room the read left out owes nothing beyond its position.
		r.listed, r.entry, r.periods = false, 0, nil
	}
	for _, br := range b.Rooms {
		r := f.rooms[br.RoomID]
		if r == nil {
			// Not tracked: the cursor held it at its old base.
			r = &feedRoom{id: roomID(br.RoomID), ordinal: br.Ordinal, sent: br.OldBase}
			f.rooms[r.id] = r
		}
		r.base, r.periods = br.Base, br.Periods
		r.member = memberAt(r.periods, r.sent)
	}
	return f.settle(ctx)
}
