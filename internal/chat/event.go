package chat

import (
	"context"
	"encoding/json"
	"time"
)

// EventType names a durable room event; it is the SSE event name.
type EventType string

// Durable room event types.
const (
	EventMessage      EventType = "message"
	EventMemberJoined EventType = "member.joined"
	EventMemberLeft   EventType = "member.left"
	EventRoomUpdated  EventType = "room.updated"
	EventRoomDeleted  EventType = "room.deleted"
	// Conversations (v1.1): changes to posted messages.
	EventMessageEdited   EventType = "message.edited"
	EventMessageDeleted  EventType = "message.deleted"
	EventReactionAdded   EventType = "reaction.added"
	EventReactionRemoved EventType = "reaction.removed"
)

// Event is one entry of a room's event log. Data is the event's JSON as
// streams send it, encoded once when the event is recorded and shared by
// every subscriber.
type Event struct {
	RoomID string
	Seq    int64
	Type   EventType
	// SubjectID is the user a member event is about (or a message's
	// author); streams use it to end a removed member's subscription.
	SubjectID string
	Data      []byte
	// CommittedAt is the database's clock as the event was appended, just
	// before its transaction committed, as the event's announcement carries
	// it; zero for events read from the log. Delivery lag is measured from
	// it.
	CommittedAt time.Time
	// MissedFrom, on an event the listener hands on after events of the
	// room it never heard announced (their announcement was lost, or a
	// later event's overtook it for longer than the listener waits), is
	// the first seq of that run; the sink reads them from the log. Zero
	// when the listener missed none.
	MissedFrom int64
}

// Ends reports whether a stream of userID ends after sending e: the room
// was deleted, or the user left or was removed.
func (e *Event) Ends(userID string) bool {
	return e.Type == EventRoomDeleted || (e.Type == EventMemberLeft && e.SubjectID == userID)
}

// StreamEnd says why a stream ended.
type StreamEnd string

// Why streams end.
const (
	EndSlowConsumer StreamEnd = "slow_consumer" // fell behind: cut off by the hub, or a write timed out
	EndShutdown     StreamEnd = "shutdown"      // the replica is shutting down
	EndTokenExpired StreamEnd = "token_expired" // the access token expired (after reauth)
	EndLeft         StreamEnd = "left"          // the user left the room
	EndRemoved      StreamEnd = "removed"       // the user was removed from the room
	EndRoomDeleted  StreamEnd = "room_deleted"  // the room was deleted
	EndClientGone   StreamEnd = "client_gone"   // the client closed the connection
)

// Errors a Subscription ends with (see Err).
var (
	ErrSlowConsumer = Errorf(EUnavailable, "subscriber fell behind; resume with Last-Event-ID")
	ErrShutdown     = Errorf(EUnavailable, "server shutting down; reconnect")
)

// StreamEnds lists every StreamEnd.
func StreamEnds() []StreamEnd {
	return []StreamEnd{EndSlowConsumer, EndShutdown, EndTokenExpired, EndLeft, EndRemoved, EndRoomDeleted, EndClientGone}
}

// EndReason says why a stream that ended after sending e ended (see Ends):
// the room was deleted, or the user left or was removed.
func (e *Event) EndReason() StreamEnd {
	if e.Type == EventRoomDeleted {
		return EndRoomDeleted
	}
	var left struct {
		Reason LeaveReason `json:"reason"`
	}
	if json.Unmarshal(e.Data, &left) == nil && left.Reason == ReasonRemoved {
		return EndRemoved
	}
	return EndLeft
}

// MemberJoined is the data of a member.joined event.
type MemberJoined struct {
	RoomID    string    `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq       int64     `json:"seq" example:"7"`
	User      User      `json:"user"`
	CreatedAt time.Time `json:"created_at" example:"2026-11-21T09:31:00Z"`
}

// LeaveReason says why a member left.
type LeaveReason string

// Leave reasons.
const (
	ReasonLeft    LeaveReason = "left"
	ReasonRemoved LeaveReason = "removed"
)

// MemberLeft is the data of a member.left event.
type MemberLeft struct {
	RoomID    string      `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq       int64       `json:"seq" example:"8"`
	UserID    string      `json:"user_id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	Reason    LeaveReason `json:"reason" enum:"left,removed" example:"left"`
	CreatedAt time.Time   `json:"created_at" example:"2026-11-21T09:35:00Z"`
}

// RoomUpdated is the data of a room.updated event: the room after the
// change, with the event's own seq.
type RoomUpdated struct {
	Room
	// RoomID repeats Room.ID, so every event's data holds room_id (a user
	// stream mixes rooms).
	RoomID string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq    int64  `json:"seq" example:"9" doc:"The seq of this event."`
}

// RoomDeleted is the data of a room.deleted event.
type RoomDeleted struct {
	RoomID string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq    int64  `json:"seq" example:"10"`
}

// MessageEdited is the data of a message.edited event: the message after
// the edit (reactions without the per-viewer me).
type MessageEdited struct {
	RoomID  string  `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq     int64   `json:"seq" example:"44" doc:"The seq of this event."`
	Message Message `json:"message"`
}

// MessageDeleted is the data of a message.deleted event. By the time it is
// sent, the message's text is erased from every event that carried it.
type MessageDeleted struct {
	RoomID     string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq        int64  `json:"seq" example:"45" doc:"The seq of this event."`
	MessageID  string `json:"message_id" format:"uuid" example:"3c6ffe44-5deb-4fa9-acae-8f368fd14d20"`
	MessageSeq int64  `json:"message_seq" example:"43" doc:"The seq of the deleted message."`
}

// ReactionChange is what reaction.added and reaction.removed events carry.
type ReactionChange struct {
	RoomID     string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq        int64  `json:"seq" example:"46" doc:"The seq of this event."`
	MessageID  string `json:"message_id" format:"uuid" example:"3c6ffe44-5deb-4fa9-acae-8f368fd14d20"`
	MessageSeq int64  `json:"message_seq" example:"43" doc:"The seq of the message reacted to."`
	Key        string `json:"key" example:"👍"`
	UserID     string `json:"user_id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	Count      int64  `json:"count" example:"3" doc:"How many members reacted with this key after the change."`
}

// ReactionAdded is the data of a reaction.added event.
type ReactionAdded ReactionChange

// ReactionRemoved is the data of a reaction.removed event.
type ReactionRemoved ReactionChange

// Ready is the data of the stream's ready event, sent once live.
type Ready struct {
	RoomID  string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	LastSeq int64  `json:"last_seq" example:"42" doc:"The room's last seq when the stream went live."`
}

// UserReady is the data of the user stream's ready event.
type UserReady struct {
	Cursor string `json:"cursor" maxLength:"512" pattern:"^[A-Za-z0-9_-]+$" example:"AdQFAQcMsR3pVtqKnS0xV0Q" doc:"The cursor of the stream's position when it went live: resume with it if no event followed."`
}

// Reauth is the data of the reauth event sent when the access token expires.
type Reauth struct {
	Reason string `json:"reason" enum:"token_expired" example:"token_expired"`
}

// EventSink receives the room events Postgres announces, in commit order.
type EventSink interface {
	// Publish delivers ev to the room's subscribers. An event without Data
	// is a reference: the sink reads it from the log.
	Publish(ctx context.Context, ev Event)
	// Resync catches up every subscribed room from the log after
	// announcements may have been lost (the listener reconnected).
	Resync(ctx context.Context)
	// Retry catches up the rooms whose last log read failed and reports
	// whether any still wait.
	Retry(ctx context.Context) (pending bool)
}

// Subscription is one stream's view of a room's live events.
type Subscription interface {
	// Ready is signalled when events are queued; Next pops them, in seq
	// order, starting at or before the position given to Subscribe plus
	// one. After a signal, pop until Next reports none.
	Ready() <-chan struct{}
	Next() (*Event, bool)
	// Done is closed when the subscription ends: the subscriber fell
	// behind, or the server is shutting down. Err says which.
	Done() <-chan struct{}
	Err() error
	// Advance tells the hub the subscriber has everything up to seq (from
	// its own log reads), so such events need not be queued for it.
	Advance(seq int64)
	// Signals is signalled when ephemeral events (typing, member.read,
	// presence) are queued; NextSignal pops them. None are queued before
	// GoLive, which the stream calls once it has sent ready.
	Signals() <-chan struct{}
	NextSignal() (*Event, bool)
	GoLive()
	// Close ends the subscription.
	Close()
}

// UserSubscription is one user stream's view of the live events of many
// rooms, through one queue.
type UserSubscription interface {
	// Ready and Next deliver, as for Subscription, the events of the
	// subscribed rooms, each room's in seq order, and the user's own
	// member.joined in rooms not subscribed.
	Ready() <-chan struct{}
	Next() (*Event, bool)
	// Done and Err are as for Subscription.
	Done() <-chan struct{}
	Err() error
	// Resync is signalled when announcements may have been lost (the
	// listener reconnected): the stream re-reads its memberships.
	Resync() <-chan struct{}
	// AddRoom subscribes to roomID's events after seq after (the caller
	// reads the log from there itself); RemoveRoom stops them.
	AddRoom(roomID string, after int64) error
	RemoveRoom(roomID string)
	// AdvanceRoom is Subscription.Advance for one room.
	AdvanceRoom(roomID string, seq int64)
	// Signals, NextSignal and GoLive are as for Subscription, for the
	// subscribed rooms (presence once per user).
	// Signals is signalled when ephemeral events (typing, member.read,
	// presence) are queued; NextSignal pops them. None are queued before
	// GoLive, which the stream calls once it has sent ready.
	Signals() <-chan struct{}
	NextSignal() (*Event, bool)
	GoLive()
	Close()
}

// Subscriber hands out room subscriptions.
type Subscriber interface {
	// Subscribe registers for roomID's live events; after is the last seq
	// the caller already has (or will read from the log itself).
	Subscribe(roomID, userID string, after int64) (Subscription, error)
	// SubscribeUser registers a user stream in no room yet.
	SubscribeUser(userID string) (UserSubscription, error)
}
