// Package chat is Parley's domain: the types every other package speaks, the
// error codes they return, and the interfaces that join them. It depends on
// the standard library only.
package chat

import (
	"time"
)

// User is a registered account as clients see it.
type User struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
}

// Author is the part of a user shown on a message.
type Author struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
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
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Topic       string     `json:"topic"`
	Visibility  Visibility `json:"visibility"`
	OwnerID     string     `json:"owner_id"`
	MemberCount int        `json:"member_count"`
	LastSeq     int64      `json:"last_seq"`
	CreatedAt   time.Time  `json:"created_at"`
}

// Member is a user's membership of a room.
type Member struct {
	User     User      `json:"user"`
	Role     Role      `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// Message is a posted chat message; it is also the data of a message event.
type Message struct {
	ID        string    `json:"id"`
	RoomID    string    `json:"room_id"`
	Seq       int64     `json:"seq"`
	Author    Author    `json:"author"`
	Body      string    `json:"body"`
	ClientID  string    `json:"client_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}
