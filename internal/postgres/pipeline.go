package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/chat"
)

// roomPipe is a transaction on one pooled connection that changes a room in
// two round trips, for the hot writes (posting, and editing, deleting and
// reacting to messages). The first round trip (openRoomPipe) pipelines
// BEGIN, the room lock and the lookups the change decides on; they run after
// the lock, so each sees every earlier commit. The second (commit) sends the
// writes and COMMIT. The room lock is held for about one round trip.
type roomPipe struct {
	conn *pgxpool.Conn
	// Room is the locked room as it was before the change.
	Room chat.Room
}

// lookup is one query of a pipe's first round trip and how to read its
// row; scan sees pgx.ErrNoRows when there is none.
type lookup struct {
	sql  string
	args []any
	scan func(pgx.Row) error
}

// roleLookup reads the caller's role in the room ("" for none) into role.
func roleLookup(roomID, userID string, role *chat.Role) lookup {
	return lookup{
		sql:  `SELECT COALESCE((SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2), '')`,
		args: []any{roomID, userID},
		scan: func(row pgx.Row) error { return row.Scan(role) },
	}
}

// openRoomPipe begins a transaction, locks the live room roomID and runs the
// lookups, in one round trip. On error nothing is left open.
func (db *DB) openRoomPipe(ctx context.Context, roomID string, lookups ...lookup) (*roomPipe, error) {
	if !validID(roomID) {
		return nil, roomNotFound()
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, dbError(err, "acquire connection")
	}
	p := &roomPipe{conn: conn}
	var b pgx.Batch
	b.Queue(`BEGIN`)
	b.Queue(lockRoomSQL, roomID)
	for _, l := range lookups {
		b.Queue(l.sql, l.args...)
	}
	br := conn.SendBatch(ctx, &b)
	_, err = br.Exec()
	if err == nil {
		p.Room, err = scanRoom(br.QueryRow())
		if errors.Is(err, pgx.ErrNoRows) {
			err = roomNotFound()
		}
	}
	for _, l := range lookups {
		if err != nil {
			break
		}
		err = l.scan(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var ce *chat.Error
		if !errors.As(err, &ce) {
			// A connection released inside a transaction is destroyed
			// by the pool, which rolls the transaction back.
			conn.Release()
			return nil, dbError(err, "lock room")
		}
		p.Refuse(ctx)
		return nil, err
	}
	return p, nil
}

// Refuse rolls the transaction back and releases the connection.
func (p *roomPipe) Refuse(ctx context.Context) {
	rctx, cancel := cleanupContext(ctx)
	defer cancel()
	if _, err := p.conn.Exec(rctx, `ROLLBACK`); err != nil {
		p.conn.Conn().PgConn().Close(rctx) //nolint:errcheck // the pool drops it either way
	}
	p.conn.Release()
}

// Commit sends the writes queued in b and COMMIT in one round trip, and
// releases the connection.
func (p *roomPipe) Commit(ctx context.Context, b *pgx.Batch, what string) error {
	defer p.conn.Release()
	n := b.Len()
	b.Queue(`COMMIT`)
	br := p.conn.SendBatch(ctx, b)
	var err error
	for range n {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if err == nil {
		// In an aborted transaction COMMIT answers ROLLBACK, not an error.
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("commit answered %q", tag.String())
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return dbError(err, what)
}
