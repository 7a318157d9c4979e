package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

var _ chat.TicketStore = (*DB)(nil)

// ticketSweep is how many expired tickets each new ticket clears away, so
// the table stays about as large as the tickets minted in one lifetime.
const ticketSweep = 16

// CreateStreamTicket stores a ticket valid for t.TTL (never past its
// token's expiry) by the database's clock, clearing a few expired ones.
func (db *DB) CreateStreamTicket(ctx context.Context, t chat.TicketRecord) error {
	_, err := db.pool.Exec(ctx, `
WITH swept AS (
    DELETE FROM stream_tickets WHERE hash IN (
        SELECT hash FROM stream_tickets WHERE expires_at < now() - interval '1 minute' LIMIT $5)
)
INSERT INTO stream_tickets (hash, user_id, token_exp, expires_at)
VALUES ($1, $2, $3, LEAST($3, now() + $4 * interval '1 microsecond'))`,
		t.Hash, t.UserID, t.TokenExpiresAt, t.TTL.Microseconds(), ticketSweep)
	return dbError(err, "insert stream ticket")
}

// FindStreamTicket returns the principal of a valid ticket.
func (db *DB) FindStreamTicket(ctx context.Context, hash []byte) (chat.Principal, error) {
	return scanTicket(db.pool.QueryRow(ctx, `
SELECT user_id, token_exp FROM stream_tickets
WHERE hash = $1 AND used_at IS NULL AND expires_at > now()`, hash))
}

// UseStreamTicket marks a valid ticket used in one statement: of racing
// calls exactly one finds used_at still NULL.
func (db *DB) UseStreamTicket(ctx context.Context, hash []byte) (chat.Principal, error) {
	return scanTicket(db.pool.QueryRow(ctx, `
UPDATE stream_tickets SET used_at = now()
WHERE hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING user_id, token_exp`, hash))
}

func scanTicket(row pgx.Row) (chat.Principal, error) {
	var p chat.Principal
	var exp time.Time
	err := row.Scan(&p.UserID, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Principal{}, chat.Errorf(chat.EUnauthenticated, "stream ticket is used, expired or unknown")
	}
	if err != nil {
		return chat.Principal{}, dbError(err, "find stream ticket")
	}
	p.ExpiresAt = exp
	return p, nil
}
