package chat

import "context"

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
	// Horizon is pg_snapshot_xmin of the snapshot read.
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
	StreamBase(ctx context.Context, userID string, oldHorizon uint64, tracked []RoomPosition) (StreamBase, error)
}
