package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chat/parley/internal/chat"
)

// Tickets implements chat.StreamTickets over a chat.TicketStore. Tickets
// are random, stored as their SHA-256 (like refresh tokens) and checked
// against the database's clock, so every replica accepts them alike.
type Tickets struct {
	store chat.TicketStore
	ttl   time.Duration
}

var _ chat.StreamTickets = (*Tickets)(nil)

// NewTickets returns a ticket service whose tickets live for ttl unused.
func NewTickets(store chat.TicketStore, ttl time.Duration) (*Tickets, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("stream ticket lifetime must be positive, got %s", ttl)
	}
	return &Tickets{store: store, ttl: ttl}, nil
}

// MintStreamTicket stores a new ticket for p.
func (t *Tickets) MintStreamTicket(ctx context.Context, p chat.Principal) (chat.StreamTicket, error) {
	tok, hash, err := NewRefreshToken()
	if err != nil {
		return chat.StreamTicket{}, fmt.Errorf("mint stream ticket: %w", err)
	}
	rec := chat.TicketRecord{Hash: hash, UserID: p.UserID, TokenExpiresAt: p.ExpiresAt, TTL: t.ttl}
	if err := t.store.CreateStreamTicket(ctx, rec); err != nil {
		return chat.StreamTicket{}, err
	}
	ttl := min(t.ttl, time.Until(p.ExpiresAt))
	return chat.StreamTicket{Ticket: tok, ExpiresIn: int64(max(ttl, 0) / time.Second)}, nil
}

// CheckStreamTicket authenticates a ticket without using it up.
func (t *Tickets) CheckStreamTicket(ctx context.Context, ticket string) (chat.Principal, error) {
	return t.store.FindStreamTicket(ctx, HashRefreshToken(ticket))
}

// UseStreamTicket uses a ticket up.
func (t *Tickets) UseStreamTicket(ctx context.Context, ticket string) (chat.Principal, error) {
	return t.store.UseStreamTicket(ctx, HashRefreshToken(ticket))
}
