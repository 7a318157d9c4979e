package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/chat"
)

// roomPipe is a transaction on one pooled connection that changes a room in
// two round trips, for the hot writes (posting, and editing, deleting and
// reacting to messages). The first round trip (openRoomPipe) pipelines the
// write limit's charge, BEGIN, the room lock and the lookups the change
// decides on; they run after
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

// writer names the author of a write that counts against the write limit
// (posts, edits, deletes, reactions), for openRoomPipe. clientID names a
// post whose repeat is free. The zero value charges nothing.
type writer struct {
	userID, clientID string
}

// openRoomPipe begins a transaction, locks the live room roomID and runs the
// lookups, in one round trip. A write by w is charged against the write
// limit first, in a pipeline segment of its own (see chargeWriteSQL): the
// charge sticks when the write is refused, and when the limit refuses the
// write the room lock is not taken and openRoomPipe answers ETooMany. On
// error nothing is left open.
func (db *DB) openRoomPipe(ctx context.Context, roomID string, w writer, lookups ...lookup) (*roomPipe, error) {
	if !validID(roomID) {
		return nil, roomNotFound()
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, dbError(err, "acquire connection")
	}
	rp := &roomPipe{conn: conn}
	charge := writeCharge{}
	if w.userID != "" {
		charge = db.newWriteCharge()
	}
	tm := conn.Conn().TypeMap()
	// pgx does not trace pipelines: give this one the calls' deadline.
	pctx, cancel := db.bound(ctx)
	defer cancel()
	p := conn.Conn().PgConn().StartPipeline(pctx)
	charge.queue(p, w.userID, roomID, w.clientID)
	p.SendQueryParams(`BEGIN`, nil, nil, nil, nil)
	charge.queueLock(p, roomID)
	for _, l := range lookups {
		args, aerr := textArgs(l.args)
		if aerr != nil {
			err = aerr
			break
		}
		p.SendQueryParams(l.sql, args, nil, nil, binaryResults)
	}
	var verdict error
	if err == nil {
		err = p.Sync()
	}
	if err == nil {
		if verdict = charge.verdict(p, tm); verdict != nil && chat.ErrorCode(verdict) != chat.ETooMany {
			err = verdict
		}
	}
	if err == nil {
		err = pipeExec(p)
	}
	if err == nil {
		rp.Room, err = scanRoom(pipeRowScanner{p, tm})
		if errors.Is(err, pgx.ErrNoRows) {
			err = roomNotFound()
		}
	}
	if verdict != nil {
		err = verdict // the lock was not taken
	}
	for _, l := range lookups {
		if err != nil {
			break
		}
		err = l.scan(pipeRowScanner{p, tm})
	}
	if cerr := p.Close(); err == nil && cerr != nil {
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
		rp.Refuse(ctx)
		return nil, err
	}
	return rp, nil
}

// textArgs encodes a lookup's arguments as text parameters whose types the
// server infers, as it does for pgx; lookups take strings (ids, keys).
func textArgs(args []any) ([][]byte, error) {
	out := make([][]byte, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
		case string:
			out[i] = []byte(v)
		case int64:
			out[i] = []byte(strconv.FormatInt(v, 10))
		case int:
			out[i] = []byte(strconv.Itoa(v))
		default:
			return nil, fmt.Errorf("pipeline argument %d: unsupported type %T", i, a)
		}
	}
	return out, nil
}

// pipeRowScanner is the next result of a pipeline as a pgx.Row.
type pipeRowScanner struct {
	p  *pgconn.Pipeline
	tm *pgtype.Map
}

func (r pipeRowScanner) Scan(dst ...any) error { return pipeRow(r.p, r.tm, dst...) }

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
// releases the connection. With first, the first write's one row is
// scanned into it.
func (p *roomPipe) Commit(ctx context.Context, b *pgx.Batch, what string, first ...any) error {
	defer p.conn.Release()
	n := b.Len()
	b.Queue(`COMMIT`)
	br := p.conn.SendBatch(ctx, b)
	var err error
	for i := range n {
		if i == 0 && len(first) > 0 {
			err = br.QueryRow().Scan(first...)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
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
