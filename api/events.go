package api

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Event types a stream sends (the SSE event: field).
const (
	// Durable events, with an id:.
	EventMessage         = "message"
	EventMemberJoined    = "member.joined"
	EventMemberLeft      = "member.left"
	EventRoomUpdated     = "room.updated"
	EventRoomDeleted     = "room.deleted"
	EventMessageEdited   = "message.edited"
	EventMessageDeleted  = "message.deleted"
	EventReactionAdded   = "reaction.added"
	EventReactionRemoved = "reaction.removed"
	// Control events, without an id.
	EventReady  = "ready"
	EventReauth = "reauth"
	// Ephemeral events, without an id, never replayed.
	EventTyping     = "typing"
	EventMemberRead = "member.read"
	EventPresence   = "presence"
)

// Event is one event read from a stream.
type Event struct {
	// Type is the event type ("message" when the frame names none).
	Type string
	// ID is the frame's id: a room stream's seq in decimal, a user
	// stream's opaque cursor; "" on ready, reauth and ephemeral events.
	ID string
	// Data is the frame's data, as sent.
	Data json.RawMessage
	// Payload is Data decoded, for the types this package knows: a
	// *Message, *MemberJoined, *MemberLeft, *RoomUpdated, *RoomDeleted,
	// *MessageEdited, *MessageDeleted, *ReactionAdded, *ReactionRemoved,
	// *Ready (room stream), *UserReady (user stream), *Reauth,
	// *Typing, *MemberRead or *Presence. It is nil for a
	// type this package does not know: the contract lets servers add
	// event types, and clients pass over what they do not know.
	Payload any
}

// Seq is a room stream event's seq (its id), 0 if it has none or the
// event is from a user stream.
func (e Event) Seq() int64 {
	n, err := strconv.ParseInt(e.ID, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Durable reports whether the event is one of the room log's (it has an
// id to resume after).
func (e Event) Durable() bool { return e.ID != "" }

// decodePayload decodes data of event type typ as sent on a user stream
// (user) or a room stream; an unknown type gives nil.
func decodePayload(typ string, data []byte, user bool) (any, error) {
	var p any
	switch typ {
	case EventMessage:
		p = new(Message)
	case EventMemberJoined:
		p = new(MemberJoined)
	case EventMemberLeft:
		p = new(MemberLeft)
	case EventRoomUpdated:
		p = new(RoomUpdated)
	case EventRoomDeleted:
		p = new(RoomDeleted)
	case EventMessageEdited:
		p = new(MessageEdited)
	case EventMessageDeleted:
		p = new(MessageDeleted)
	case EventReactionAdded:
		p = new(ReactionAdded)
	case EventReactionRemoved:
		p = new(ReactionRemoved)
	case EventReady:
		if user {
			p = new(UserReady)
		} else {
			p = new(Ready)
		}
	case EventReauth:
		p = new(Reauth)
	case EventTyping:
		p = new(Typing)
	case EventMemberRead:
		p = new(MemberRead)
	case EventPresence:
		p = new(Presence)
	default:
		return nil, nil
	}
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("decode a %s event: %w", typ, err)
	}
	return p, nil
}
