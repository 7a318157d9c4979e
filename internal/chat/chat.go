// Package chat is Parley's domain: the types every other package speaks, the
// error codes they return, and the interfaces that join them. It depends on
// the standard library only.
package chat

import (
	"time"
)

// User is a registered account as clients see it.
type User struct {
	ID          string    `json:"id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	Username    string    `json:"username" example:"alice" doc:"Lower case, 3-32 of a-z, 0-9, '_', '.', '-'."`
	DisplayName string    `json:"display_name" example:"Alice Liddell"`
	CreatedAt   time.Time `json:"created_at" example:"2026-11-21T09:30:00Z"`
}

// Author is the part of a user shown on a message.
type Author struct {
	ID          string `json:"id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	Username    string `json:"username" example:"alice"`
	DisplayName string `json:"display_name" example:"Alice Liddell"`
}

// Visibility says who may see and join a room.
type Visibility string

// Room visibilities.
const (
	Public  Visibility = "public"
	Private Visibility = "private"
)

// Role is a member's role in a room.
type Role string

// Member roles.
const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// Room is a chat room.
type Room struct {
	ID          string     `json:"id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Name        string     `json:"name" example:"general"`
	Topic       string     `json:"topic" example:"Anything goes"`
	Visibility  Visibility `json:"visibility" enum:"public,private" example:"public"`
	OwnerID     string     `json:"owner_id" format:"uuid" example:"6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"`
	MemberCount int        `json:"member_count" example:"3"`
	LastSeq     int64      `json:"last_seq" example:"42" doc:"The seq of the room's latest event."`
	CreatedAt   time.Time  `json:"created_at" example:"2026-11-21T09:30:00Z"`
	// The caller's read state, for a member only; stream data, shared by
	// every viewer, never carries it.
	LastReadSeq *int64 `json:"last_read_seq,omitempty" example:"40" doc:"The caller's read marker (members only; absent in stream data)."`
	UnreadCount *int64 `json:"unread_count,omitempty" example:"2" doc:"Messages after the caller's marker that are neither theirs nor deleted (members only; absent in stream data)."`
}

// Member is a user's membership of a room.
type Member struct {
	User     User      `json:"user"`
	Role     Role      `json:"role" enum:"owner,member" example:"member"`
	JoinedAt time.Time `json:"joined_at" example:"2026-11-21T09:31:00Z"`
	// LastReadSeq is the member's read marker (read receipts).
	LastReadSeq int64 `json:"last_read_seq" example:"40" doc:"How far the member has read: the seq of their read marker."`
	// Online is the member's presence (see the presence event).
	Online bool `json:"online" example:"true" doc:"Whether the member has a stream open on any replica (or closed their last one less than 3 s ago); the presence event tells of changes."`
}

// Message is a posted chat message; it is also the data of a message event.
// History and single reads give its current state (the last edit, or a
// tombstone once deleted); a message event gives it as posted.
type Message struct {
	ID        string     `json:"id" format:"uuid" example:"3c6ffe44-5deb-4fa9-acae-8f368fd14d20"`
	RoomID    string     `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq       int64      `json:"seq" example:"43" doc:"The message's place in the room's event log; its SSE id."`
	Author    Author     `json:"author"`
	Body      string     `json:"body" example:"Hello, room!" doc:"The current text; empty once the message is deleted."`
	ClientID  string     `json:"client_id,omitempty" example:"m-2f6c1a"`
	ReplyTo   string     `json:"reply_to,omitempty" format:"uuid" example:"9d0c4b7a-1e2f-4a3b-8c5d-6e7f8a9b0c1d" doc:"The message of the same room this one replies to."`
	CreatedAt time.Time  `json:"created_at" example:"2026-11-21T09:32:00Z"`
	EditedAt  *time.Time `json:"edited_at,omitempty" example:"2026-11-21T09:33:00Z" doc:"When the body was last edited; absent if never."`
	DeletedAt *time.Time `json:"deleted_at,omitempty" example:"2026-11-21T09:34:00Z" doc:"Set on a tombstone: the message was deleted and its text erased."`
	Reactions []Reaction `json:"reactions" nullable:"false" doc:"Reactions by key, in the order they were first used; empty on a tombstone."`
}

// Deleted reports whether m is a tombstone.
func (m *Message) Deleted() bool { return m.DeletedAt != nil }

// Reaction is one reaction key on a message with how many members used it.
type Reaction struct {
	Key   string `json:"key" example:"👍"`
	Count int64  `json:"count" example:"3"`
	// Me is per viewer: whether the caller reacted with this key. Stream
	// data, shared by every viewer, never carries it.
	Me *bool `json:"me,omitempty" example:"true" doc:"Whether the caller reacted with this key (absent in stream data)."`
}

// ReadState is a member's read marker in a room and what lies after it.
type ReadState struct {
	RoomID      string `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	LastReadSeq int64  `json:"last_read_seq" example:"40"`
	UnreadCount int64  `json:"unread_count" example:"2" doc:"Messages after the marker that are neither the caller's own nor deleted."`
}
