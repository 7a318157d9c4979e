package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultCallTimeout bounds each database call when OpenPool is given no
// timeout of its own (PARLEY_DB_TIMEOUT).
const DefaultCallTimeout = 5 * time.Second

// callDeadlines gives every database call made through a pool a deadline:
// taking a connection from the pool, each statement (Exec, Query until its
// rows are closed, QueryRow until Scan) and each batch. It is the pool's
// tracer, so no call can forget it; the hot path's pipeline, which pgx does
// not trace, takes the same deadline in openRoomPipe. A deadline that passes
// surfaces as context.DeadlineExceeded, which dbError maps to
// chat.EUnavailable; a caller that went away surfaces as context.Canceled,
// which it does not.
type callDeadlines struct {
	timeout time.Duration
}

var (
	_ pgx.QueryTracer       = callDeadlines{}
	_ pgx.BatchTracer       = callDeadlines{}
	_ pgxpool.AcquireTracer = callDeadlines{}
	_ pgx.ConnectTracer     = callDeadlines{}
	_ pgx.PrepareTracer     = callDeadlines{}
	_ pgx.CopyFromTracer    = callDeadlines{}
)

// cancelKey holds the cancel function of a call's deadline in the context
// the tracer hands pgx, so the call's end can stop its timer.
type cancelKey struct{}

// noDeadlineKey marks a context whose calls run without the deadline
// (migrations, which may rightly take minutes).
type noDeadlineKey struct{}

// withoutDeadline lets the calls made with ctx run as long as ctx allows.
func withoutDeadline(ctx context.Context) context.Context {
	return context.WithValue(ctx, noDeadlineKey{}, true)
}

// start gives a call its deadline (an earlier one of the caller's wins).
func (d callDeadlines) start(ctx context.Context) context.Context {
	if d.timeout <= 0 || ctx.Value(noDeadlineKey{}) != nil {
		return ctx
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

// end stops the timer of the deadline start set in ctx.
func (callDeadlines) end(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

func (d callDeadlines) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return d.start(ctx)
}

func (d callDeadlines) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	d.end(ctx)
}

func (d callDeadlines) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return d.start(ctx)
}

func (callDeadlines) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (d callDeadlines) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	d.end(ctx)
}

func (d callDeadlines) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return d.start(ctx)
}

func (d callDeadlines) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	d.end(ctx)
}

func (d callDeadlines) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return d.start(ctx)
}

func (d callDeadlines) TraceConnectEnd(ctx context.Context, _ pgx.TraceConnectEndData) {
	d.end(ctx)
}

func (d callDeadlines) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return d.start(ctx)
}

func (d callDeadlines) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareEndData) {
	d.end(ctx)
}

func (d callDeadlines) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return d.start(ctx)
}

func (d callDeadlines) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	d.end(ctx)
}

// callTimeout is the deadline pool's calls get, 0 for none.
func callTimeout(pool *pgxpool.Pool) time.Duration {
	if d, ok := pool.Config().ConnConfig.Tracer.(callDeadlines); ok {
		return d.timeout
	}
	return 0
}

// bound gives a call pgx does not trace (a pipeline) the pool's deadline;
// call the returned function when it is over.
func (db *DB) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if db.timeout <= 0 || ctx.Value(noDeadlineKey{}) != nil {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, db.timeout)
}
