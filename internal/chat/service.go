package chat

import (
	"context"
	"time"
)

// Session is what register, login and refresh return.
type Session struct {
	User             User   `json:"user"`
	AccessToken      string `json:"access_token" example:"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2ZjFjIn0.sig" doc:"HS256 JWT; send as Authorization: Bearer."`
	TokenType        string `json:"token_type" enum:"Bearer" example:"Bearer"`
	ExpiresIn        int64  `json:"expires_in" example:"900" doc:"Seconds until the access token expires."`
	RefreshToken     string `json:"refresh_token" example:"8J3k0m5Qd1sYx0N4o2Gv7pW9cR6tL1aZ3bE5fH8iK0M" doc:"Opaque; single use: refresh returns a new one."`
	RefreshExpiresIn int64  `json:"refresh_expires_in" example:"2592000" doc:"Seconds until the refresh token expires."`
}

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID    string
	ExpiresAt time.Time
}

// AccountService registers users and manages their sessions.
type AccountService interface {
	Register(ctx context.Context, username, password, displayName string) (Session, error)
	// Login opens a session; clientIP is the caller's address, for the
	// failed-login limits.
	Login(ctx context.Context, username, password, clientIP string) (Session, error)
	Refresh(ctx context.Context, refreshToken string) (Session, error)
	Logout(ctx context.Context, refreshToken string) error
	// Authenticate checks an access token.
	Authenticate(ctx context.Context, accessToken string) (Principal, error)
	FindUserByID(ctx context.Context, id string) (User, error)
	FindUserByName(ctx context.Context, username string) (User, error)
}

// RefreshToken is a stored refresh token; only its hash is kept.
type RefreshToken struct {
	Hash      []byte
	FamilyID  string
	UserID    string
	ExpiresAt time.Time
}

// UserStore persists users and refresh tokens.
type UserStore interface {
	// CreateUser stores u; EConflict when the username is taken.
	CreateUser(ctx context.Context, u User, passwordHash string) error
	FindUserByID(ctx context.Context, id string) (User, error)
	// FindUserByName returns the user and its password hash.
	FindUserByName(ctx context.Context, username string) (User, string, error)
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken marks the token with oldHash used and stores next
	// in its family, returning the family's user. An unknown, expired or
	// revoked token is EUnauthenticated; a used one also revokes its family.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next RefreshToken) (string, error)
	// RevokeRefreshFamily revokes the family of the token; unknown is fine.
	RevokeRefreshFamily(ctx context.Context, hash []byte) error
}

// LoginThrottle limits failed logins per username and client address.
type LoginThrottle interface {
	// ReserveLogin counts one failed login before the password is checked
	// (so concurrent guesses cannot all slip under the limit), or refuses
	// it with ETooMany when a limit is reached.
	ReserveLogin(ctx context.Context, username, clientIP string) error
	// ReleaseLogin takes a reservation back when the login did not fail.
	ReleaseLogin(ctx context.Context, username, clientIP string) error
}

// RoomCreate is the input of CreateRoom.
type RoomCreate struct {
	Name       string
	Topic      string
	Visibility Visibility
}

// RoomUpdate is the input of UpdateRoom; nil fields stay as they are.
type RoomUpdate struct {
	Name  *string
	Topic *string
}

// RoomScope selects which rooms FindRooms lists.
type RoomScope string

// Room scopes.
const (
	ScopeJoined RoomScope = "joined"
	ScopePublic RoomScope = "public"
)

// RoomFilter pages through room lists, newest first.
type RoomFilter struct {
	Scope  RoomScope
	Cursor string
	Limit  int
}

// MessagePost is the input of PostMessage.
type MessagePost struct {
	Body     string
	ClientID string
	// ReplyTo, when set, is the id of a message of the same room.
	ReplyTo string
}

// MessageFilter pages through history: the latest Limit messages, or with
// Before the Limit messages just below it, or with After the first Limit
// messages above it. At most one of Before and After is set.
type MessageFilter struct {
	Before *int64
	After  *int64
	Limit  int
}

// RoomService is everything about rooms, membership and messages. userID is
// the caller; every method applies the room permissions (see Authorize).
type RoomService interface {
	FindRooms(ctx context.Context, userID string, f RoomFilter) (rooms []Room, nextCursor string, err error)
	CreateRoom(ctx context.Context, userID string, in RoomCreate) (Room, error)
	FindRoom(ctx context.Context, userID, roomID string) (Room, error)
	UpdateRoom(ctx context.Context, userID, roomID string, in RoomUpdate) (Room, error)
	DeleteRoom(ctx context.Context, userID, roomID string) error
	JoinRoom(ctx context.Context, userID, roomID string) (Member, error)
	LeaveRoom(ctx context.Context, userID, roomID string) error
	FindMembers(ctx context.Context, userID, roomID string) ([]Member, error)
	AddMember(ctx context.Context, userID, roomID, memberID string) (Member, error)
	RemoveMember(ctx context.Context, userID, roomID, memberID string) error
	// PostMessage returns the message and whether it was created now (false
	// when client_id repeated with the same body).
	PostMessage(ctx context.Context, userID, roomID string, in MessagePost) (Message, bool, error)
	FindMessages(ctx context.Context, userID, roomID string, f MessageFilter) (msgs []Message, hasMore bool, err error)
	// FindMessage returns a message's current state as userID sees it.
	FindMessage(ctx context.Context, userID, roomID, messageID string) (Message, error)
	// EditMessage replaces the body of the caller's own message and records
	// message.edited; an edit that changes nothing records nothing.
	EditMessage(ctx context.Context, userID, roomID, messageID, body string) (Message, error)
	// DeleteMessage erases a message's text (the author's or, for the room
	// owner, anyone's) and records message.deleted.
	DeleteMessage(ctx context.Context, userID, roomID, messageID string) error
	// AddReaction reacts to a message with key and records reaction.added,
	// once: reacting again changes nothing. It returns the key's count.
	AddReaction(ctx context.Context, userID, roomID, messageID, key string) (Reaction, error)
	// RemoveReaction takes the caller's reaction back and records
	// reaction.removed if there was one.
	RemoveReaction(ctx context.Context, userID, roomID, messageID, key string) error
	// MarkRead moves the caller's read marker forward to seq (a lower seq
	// leaves it where it is) and returns the room's read state.
	MarkRead(ctx context.Context, userID, roomID string, seq int64) (ReadState, error)
	// FindUnread returns the caller's total unread count and the read state
	// of every room of theirs with unread messages.
	FindUnread(ctx context.Context, userID string) (total int64, rooms []ReadState, err error)
	// CheckStream authorizes userID to stream roomID and returns its last seq.
	CheckStream(ctx context.Context, userID, roomID string) (lastSeq int64, err error)
}

// EventLog reads the room event log.
type EventLog interface {
	// ReadEvents returns up to limit events of roomID with seq > after, in
	// seq order.
	ReadEvents(ctx context.Context, roomID string, after int64, limit int) ([]Event, error)
	// LastSeq returns the room's last seq.
	LastSeq(ctx context.Context, roomID string) (int64, error)
}
