// Package postgres implements Parley's stores on PostgreSQL with pgx: users
// and refresh tokens, rooms and membership, the room event log with its
// NOTIFY announcements, the LISTEN loop, and migrations.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/chat"
)

// DB is Parley's Postgres store.
type DB struct {
	pool   *pgxpool.Pool
	limits Limits
	// timeout is the deadline of each database call (see callDeadlines).
	timeout time.Duration
	// ann announces committed posts in batches (see announce.go).
	ann *announcer
	// group commits posts arriving together in one transaction (see
	// groupcommit.go).
	group *groupCommitter
	// signals announces read receipts (nil: none).
	signals chat.Signaler
}

// NewDB wraps an open pool; its calls take the pool's deadline.
func NewDB(pool *pgxpool.Pool, opts ...Option) *DB {
	db := &DB{pool: pool, timeout: callTimeout(pool)}
	db.ann = newAnnouncer(func(ctx context.Context, payloads []string) error {
		_, err := db.pool.Exec(ctx, announceSQL, payloads)
		return err
	})
	db.group = &groupCommitter{db: db}
	for _, o := range opts {
		o(db)
	}
	return db
}

// WaitAnnounced blocks until every event committed so far has been
// announced (or its announcement given up), or ctx ends.
func (db *DB) WaitAnnounced(ctx context.Context) error { return db.ann.wait(ctx) }

// Pool returns the underlying pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// OpenPool connects a pool of at most maxConns connections and checks it.
// Every call through the pool (taking a connection, connecting, each
// statement and batch) must end within timeout (0: DefaultCallTimeout), or
// fails as chat.EUnavailable.
func OpenPool(ctx context.Context, url string, maxConns int32, timeout time.Duration) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	// The pool takes its acquire tracer from the connections' tracer.
	cfg.ConnConfig.Tracer = callDeadlines{timeout: timeout}
	if cfg.ConnConfig.ConnectTimeout <= 0 || cfg.ConnConfig.ConnectTimeout > timeout {
		// The pool also connects in the background (MinConns), where no
		// call's deadline applies.
		cfg.ConnConfig.ConnectTimeout = timeout
	}
	cfg.MaxConns = maxConns
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "parley"
	}
	cfg.MinConns = 1
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return &chat.Error{Code: chat.EUnavailable, Message: "database unavailable", Err: err}
	}
	return nil
}

// inTx runs fn in a transaction, committing when it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return dbError(err, "begin transaction")
	}
	defer func() {
		// After a commit this is a no-op; a rollback that fails leaves the
		// connection broken, and the pool drops it.
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError(err, "commit")
	}
	return nil
}

// dbError translates a Postgres or pgx error into a chat.Error. It is the
// one place that knows SQLSTATE codes; chat errors pass through.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	var ce *chat.Error
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &chat.Error{Code: chat.ENotFound, Message: "not found", Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case uniqueViolation:
			return &chat.Error{Code: chat.EConflict, Message: "already exists", Err: fmt.Errorf("%s: %w", what, err)}
		case "23503": // foreign_key_violation
			return &chat.Error{Code: chat.ENotFound, Message: "not found", Err: fmt.Errorf("%s: %w", what, err)}
		case "57P01", "57P02", "57P03", "53300": // shutdown, crash, cannot connect now, too many connections
			return &chat.Error{Code: chat.EUnavailable, Message: "database unavailable", Err: fmt.Errorf("%s: %w", what, err)}
		}
	}
	if errors.Is(err, context.Canceled) {
		// The caller went away (or the server is shutting down): not the
		// database's fault, and nobody reads the answer.
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return &chat.Error{Code: chat.EUnavailable, Message: "database did not answer in time", Err: fmt.Errorf("%s: %w", what, err)}
	}
	if pgconn.SafeToRetry(err) || isConnError(err) {
		return &chat.Error{Code: chat.EUnavailable, Message: "database unavailable", Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// uniqueViolation is the SQLSTATE of a unique constraint violation.
const uniqueViolation = "23505"

// isUniqueViolation reports whether err is a unique constraint violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation
}

// isConnError reports whether err is a lost or refused connection to the
// database rather than an answer from it: the statement may or may not have
// run (a COMMIT whose answer was lost may have committed), which is why a
// 503 for a write tells the client to retry with the same client_id.
func isConnError(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// validID reports whether id can name a row: ids are UUIDs, anything else
// names nothing.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil
}

// cleanupContext bounds clean-up work (a ROLLBACK) that must run even when
// the request's context is already canceled.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
