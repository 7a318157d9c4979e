package chat

import (
	"context"
	"time"
)

// Period is one membership of a user in a room: from the user's
// member.joined at Joined to their member.left at Left (0 while open).
type Period struct {
	Joined, Left int64
}

// Holds reports whether the event at seq belongs to the period.
func (p Period) Holds(seq int64) bool { return seq >= p.Joined && (p.Left == 0 || seq <= p.Left) }

// StreamBase is what a user stream reads from one snapshot of the log to
// place itself: a new horizon and, for each room it may owe the user
// events in, the room's bases under the old and the new horizon.
type StreamBase struct {
	// Horizon is pg_snapshot_xmin of the snapshot read, or the cap asked
	// for when that is lower.
	Horizon uint64
	Rooms   []BaseRoom
}

// BaseRoom is one room of a StreamBase.
type BaseRoom struct {
	RoomID  string
	Ordinal int64
	// LastSeq is the room's last seq in the snapshot.
	LastSeq int64
	// OldBase and Base are the room's last seq whose hx is below the old
	// horizon and below the new one (0 when none is).
	OldBase, Base int64
	// Tracked is the position the caller gave for the room, -1 if none.
	Tracked int64
	// Periods are the user's memberships that may still owe events: open
	// ones and those ending after min(OldBase, Tracked), by Joined.
	Periods []Period
}

// UserStreamLog reads what user streams need beyond the room logs.
type UserStreamLog interface {
	// StreamBase reads a new horizon and the user's rooms in one snapshot.
	// oldHorizon is the horizon the caller's positions are based on (0:
	// the new one, for a stream starting live); tracked are the positions
	// the caller holds apart from that base, by ordinal.
	// A maxHorizon other than 0 caps the new horizon (see HeldHorizons).
	StreamBase(ctx context.Context, userID string, oldHorizon, maxHorizon uint64, tracked []RoomPosition) (StreamBase, error)
	// HeldHorizons reads the horizon a StreamBase would read now and, for
	// each room held at a position, the hx of its next event (the one
	// after Seq), by ordinal; a room with no next event is left out. A
	// stream holding rooms back uses them to pick a horizon that lets only
	// as many of them through as its cursor can list.
	HeldHorizons(ctx context.Context, held []RoomPosition) (uint64, map[int64]uint64, error)
}

// UserFeed is the engine of one user stream (see stream.UserFeed): it
// places the stream, replays, follows the user's rooms and writes cursors.
// Only the stream's goroutine calls it.
type UserFeed interface {
	// Start places the feed at cur (nil: live), replays what the user
	// missed through emit, and returns the cursor for ready.
	Start(ctx context.Context, cur *UserCursor) (string, error)
	// Ready and Next are the live events to Handle (see Subscription).
	Ready() <-chan struct{}
	Next() (*Event, bool)
	Handle(ctx context.Context, ev *Event) error
	// Resync signals that the feed must Rebase; RebaseDue says whether a
	// Rebase would shrink the cursor now, or when to ask again.
	Resync() <-chan struct{}
	RebaseDue(now time.Time) (bool, time.Duration)
	Rebase(ctx context.Context) error
	// Done and Err are the subscription's (shutdown, cut off).
	Done() <-chan struct{}
	Err() error
	// Signals, NextSignal and GoLive are the subscription's ephemeral
	// events, which bypass the feed: they have no place in a cursor.
	Signals() <-chan struct{}
	NextSignal() (*Event, bool)
	GoLive()
	Close()
}

// UserFeeds opens user feeds; emit writes one frame: an event and the
// cursor after it.
type UserFeeds interface {
	OpenUserFeed(userID string, emit func(ev *Event, cursor string) error) (UserFeed, error)
}
