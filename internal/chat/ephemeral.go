package chat

import (
	"encoding/json"
	"time"
)

// Ephemeral event types (v1.1): sent live to streams only, without id:,
// never stored in a room's log and never replayed.
const (
	EventTyping     EventType = "typing"
	EventMemberRead EventType = "member.read"
	EventPresence   EventType = "presence"
)

// EphemeralType reports whether typ names an ephemeral event.
func EphemeralType(typ EventType) bool {
	switch typ {
	case EventTyping, EventMemberRead, EventPresence:
		return true
	}
	return false
}

// Ephemeral timing from the contract.
const (
	// TypingInterval: at most one typing event per user and room this
	// often, across all replicas.
	TypingInterval = 2 * time.Second
	// PresenceGrace: a user goes offline once their last stream has been
	// closed this long, so a reconnect does not flap.
	PresenceGrace = 3 * time.Second
	// PresenceTimeout: a replica that dies takes its users offline within
	// this long.
	PresenceTimeout = 30 * time.Second
)

// Typing is the data of a typing event.
type Typing struct {
	RoomID string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	UserID string `json:"user_id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
}

// MemberRead is the data of a member.read event (a read receipt).
type MemberRead struct {
	RoomID      string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	UserID      string `json:"user_id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	LastReadSeq int64  `json:"last_read_seq" example:"42" doc:"The member's read marker after the move."`
}

// Presence is the data of a presence event.
type Presence struct {
	UserID string `json:"user_id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	Online bool   `json:"online" example:"true" doc:"true: the user opened their first stream; false: their last one has been closed for 3 s."`
}

// Signal is one ephemeral event as replicas pass it to each other: what
// it is about, without its encoded data.
type Signal struct {
	Type EventType
	// RoomID is the room of a typing or member.read signal; "" for
	// presence, which is about a user in all their rooms.
	RoomID string
	// UserID is the user the signal is about: it is never sent to them.
	UserID      string
	LastReadSeq int64 // member.read
	Online      bool  // presence
}

// Event returns the signal as a stream event: no seq (so no id:), data
// encoded once, to be shared by every stream it goes to.
func (s Signal) Event() *Event {
	var v any
	switch s.Type {
	case EventTyping:
		v = Typing{RoomID: s.RoomID, UserID: s.UserID}
	case EventMemberRead:
		v = MemberRead{RoomID: s.RoomID, UserID: s.UserID, LastReadSeq: s.LastReadSeq}
	default:
		v = Presence{UserID: s.UserID, Online: s.Online}
	}
	data, _ := json.Marshal(v) // plain structs of strings, ints and bools
	return &Event{RoomID: s.RoomID, Type: s.Type, SubjectID: s.UserID, Data: data}
}

// Ephemeral reports whether an event is ephemeral: it has no seq.
func (e *Event) Ephemeral() bool { return e.Seq == 0 }

// Signaler announces ephemeral events to every replica. Its methods never
// block on the database: signals are batched, and dropped rather than
// delaying anything when the database cannot take them.
type Signaler interface {
	// Typing announces that userID, a member of roomID (the caller
	// checked), is typing, unless this replica announced it within
	// TypingInterval.
	Typing(roomID, userID string)
	// MemberRead announces that a member's read marker moved to
	// lastReadSeq.
	MemberRead(roomID, userID string, lastReadSeq int64)
}

// SignalSink receives the signals every replica announced, in the order
// the database delivered them (the same order on every replica).
type SignalSink interface {
	// DeliverSignals hands one announced batch to this replica's streams.
	// at is the database's clock when the batch was sent; rooms holds,
	// for each presence subject, the rooms they are a member of.
	DeliverSignals(at time.Time, sigs []Signal, rooms map[string][]string)
}

// PresenceStore records which users have streams open on this replica;
// the store decides, across replicas, when a user goes online or offline
// and announces it.
type PresenceStore interface {
	// UserOnline: userID opened their first stream on this replica.
	UserOnline(userID string)
	// UserOffline: userID's last stream on this replica closed a grace
	// period ago.
	UserOffline(userID string)
}
