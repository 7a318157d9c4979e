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
}

// Member is a user's membership of a room.
type Member struct {
	User     User      `json:"user"`
	Role     Role      `json:"role" enum:"owner,member" example:"member"`
	JoinedAt time.Time `json:"joined_at" example:"2026-11-21T09:31:00Z"`
}

// Message is a posted chat message; it is also the data of a message event.
type Message struct {
	ID        string    `json:"id" format:"uuid" example:"3c6ffe44-5deb-4fa9-acae-8f368fd14d20"`
	RoomID    string    `json:"room_id" format:"uuid" example:"0b9a3c1e-5d2f-4a8b-9c7d-1e2f3a4b5c6d"`
	Seq       int64     `json:"seq" example:"43" doc:"The message's place in the room's event log; its SSE id."`
	Author    Author    `json:"author"`
	Body      string    `json:"body" example:"Hello, room!"`
	ClientID  string    `json:"client_id,omitempty" example:"m-2f6c1a"`
	CreatedAt time.Time `json:"created_at" example:"2026-11-21T09:32:00Z"`
}
