package chat

import (
	"context"
	"time"
)

// StreamTicket is what POST /v1/stream-tickets answers: a single-use
// credential for opening one event stream, so a browser's EventSource URL
// need not carry the access token.
type StreamTicket struct {
	Ticket    string `json:"ticket" maxLength:"128" example:"Qm9iIGlzIHR5cGluZy4uLiBhbmQgdGhpcyBpcyBub3QgYSB0b2tlbg" doc:"Opaque and single use: open one stream with ?ticket=<ticket>."`
	ExpiresIn int64  `json:"expires_in" minimum:"0" example:"30" doc:"Seconds until the ticket expires unused."`
}

// TicketRecord is a stored stream ticket; only its hash is kept.
type TicketRecord struct {
	Hash   []byte
	UserID string
	// TokenExpiresAt is when the access token that asked for the ticket
	// expires: a stream opened with the ticket ends then.
	TokenExpiresAt time.Time
	// TTL is how long the ticket stays valid unused (never past
	// TokenExpiresAt).
	TTL time.Duration
}

// TicketStore persists stream tickets, so that any replica accepts them.
type TicketStore interface {
	// CreateStreamTicket stores a ticket; its clock is the database's.
	CreateStreamTicket(ctx context.Context, t TicketRecord) error
	// FindStreamTicket returns the principal of an unused, unexpired
	// ticket without using it up; EUnauthenticated otherwise.
	FindStreamTicket(ctx context.Context, hash []byte) (Principal, error)
	// UseStreamTicket uses the ticket up, atomically: of racing calls one
	// succeeds and the others are EUnauthenticated, like a used, expired
	// or unknown ticket.
	UseStreamTicket(ctx context.Context, hash []byte) (Principal, error)
}

// StreamTickets mints and checks stream tickets.
type StreamTickets interface {
	// MintStreamTicket gives p a ticket that authenticates as p, until p's
	// token expires.
	MintStreamTicket(ctx context.Context, p Principal) (StreamTicket, error)
	// CheckStreamTicket authenticates a ticket without using it up.
	CheckStreamTicket(ctx context.Context, ticket string) (Principal, error)
	// UseStreamTicket uses a ticket up; call it once the stream is sure to
	// open (every refusal checked).
	UseStreamTicket(ctx context.Context, ticket string) (Principal, error)
}
