package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
)

// ListenerAppName is the application_name of LISTEN connections, so
// operators (and tests) can find them in pg_stat_activity.
const ListenerAppName = "parley-listener"

// Listener holds this replica's one dedicated LISTEN connection and hands
// every announced room event to a sink, in commit order. When the
// connection drops it reconnects with backoff, LISTENs again, and has the
// sink resync from the log, since notifications sent meanwhile are gone.
type Listener struct {
	url       string
	sink      chat.EventSink
	logger    *slog.Logger
	connected atomic.Bool
	conn      atomic.Pointer[pgx.Conn]
	// reconnected is called each time LISTEN is back in place after the
	// connection dropped.
	reconnected func()
	// local holds this replica's own commits for the session's loop (see
	// local.go).
	local localEvents
}

// ListenerOption configures a Listener.
type ListenerOption func(*Listener)

// OnReconnect has the listener call fn (for metrics) each time it is
// listening again after its connection dropped.
func OnReconnect(fn func()) ListenerOption { return func(l *Listener) { l.reconnected = fn } }

// NewListener returns a listener for the database at url.
func NewListener(url string, sink chat.EventSink, logger *slog.Logger, opts ...ListenerOption) *Listener {
	l := &Listener{url: url, sink: sink, logger: logger, reconnected: func() {}}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Connected reports whether the LISTEN connection is up.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Backend returns the LISTEN connection's server process id, 0 when down.
func (l *Listener) Backend() uint32 {
	if c := l.conn.Load(); c != nil {
		return c.PgConn().PID()
	}
	return 0
}

// Run listens until ctx ends. ready is closed once the first LISTEN is in
// place, so a replica can wait for it before serving streams.
func (l *Listener) Run(ctx context.Context, ready chan<- struct{}) {
	runListenSessions(ctx, l.logger, "listener", ready, l.session)
}

// session runs one connection: connect, LISTEN, resync if this is a
// reconnect, then deliver notifications until the connection fails.
func (l *Listener) session(ctx context.Context, resync bool, up func()) error {
	conn, err := dialListen(ctx, l.url, ListenerAppName, NotifyChannel)
	if err != nil {
		return err
	}
	defer func() {
		l.connected.Store(false)
		l.conn.Store(nil)
		closeListenConn(ctx, conn)
	}()
	l.conn.Store(conn)
	l.connected.Store(true)
	l.logger.Info("listener connected", "backend_pid", conn.PgConn().PID())
	up()
	if resync {
		l.reconnected()
		l.sink.Resync(ctx)
	}
	order := newRoomOrder(holdMax, func(ev chat.Event) { l.sink.Publish(ctx, ev) })
	l.local.setOn(true)
	defer l.local.setOn(false)
	var sweep horizonSweep
	pending := false
	lastPing := time.Now()
	var expireAt time.Time // when the oldest held event is handed on
	lastScan := time.Now()
	for {
		// Wake up now and then even without notifications: to sweep for
		// unannounced events, to hand on held events whose gap did not
		// fill, to retry rooms whose log read failed, and to ping, since
		// a half-open connection would otherwise look connected for
		// minutes.
		now := time.Now()
		if !now.Before(sweep.next) {
			sweep.next = now.Add(sweepInterval)
			sctx, cancel := context.WithTimeout(ctx, pingTimeout)
			tops, err := sweep.run(sctx, conn)
			cancel()
			if err != nil {
				return err
			}
			for _, t := range tops {
				order.covered(t.roomID, t.first, t.seq, now)
			}
			lastPing = now // the sweep's query is a ping too
		}
		if (!expireAt.IsZero() && !now.Before(expireAt)) || now.Sub(lastScan) >= forgetScan {
			expireAt, lastScan = order.expire(now), now
		}
		wait := time.Until(sweep.next)
		if !expireAt.IsZero() {
			wait = min(wait, time.Until(expireAt))
		}
		if pending {
			wait = min(wait, retryPending)
		}
		wait = max(wait, time.Millisecond)
		wctx, cancel := context.WithTimeout(ctx, wait)
		if local := l.local.arm(cancel); local != nil {
			cancel()
			expireAt = addInOrder(order, local, expireAt)
			continue
		}
		n, err := conn.WaitForNotification(wctx)
		local := l.local.disarm()
		cancel()
		if local != nil {
			expireAt = addInOrder(order, local, expireAt)
		}
		switch {
		case err == nil:
			evs, derr := DecodeAnnouncement(n.Payload)
			if derr != nil {
				l.logger.Error("bad notification", "err", derr)
				continue
			}
			expireAt = addInOrder(order, evs, expireAt)
			if pending {
				pending = l.sink.Retry(ctx)
			}
		case ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) && !conn.IsClosed():
			// The wait timed out, or local events woke it.
			if pending {
				pending = l.sink.Retry(ctx)
			}
			if time.Since(lastPing) >= idlePing {
				pctx, cancel := context.WithTimeout(ctx, pingTimeout)
				err := conn.Ping(pctx)
				cancel()
				if err != nil {
					return fmt.Errorf("ping: %w", err)
				}
				lastPing = time.Now()
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// addInOrder takes events (announced, or this replica's own) through the
// order, and returns when the oldest held event is due.
func addInOrder(order *roomOrder, evs []chat.Event, expireAt time.Time) time.Time {
	now := time.Now()
	for _, ev := range evs {
		order.add(ev, now)
	}
	if expireAt.IsZero() && order.holding > 0 {
		expireAt = now.Add(holdMax)
	}
	return expireAt
}

// Listener timing.
const (
	idlePing     = 10 * time.Second       // ping an idle LISTEN connection this often
	forgetScan   = 10 * time.Second       // forget quiet rooms' order this often
	retryPending = 500 * time.Millisecond // retry failed log reads this often
	pingTimeout  = 5 * time.Second
)

// errListenerDown is what readiness reports while the listener reconnects.
var errListenerDown = errors.New("listener down")

// Ready reports the listener's state as readiness does.
func (l *Listener) Ready() error {
	if !l.Connected() {
		return &chat.Error{Code: chat.EUnavailable, Message: "event listener is reconnecting", Err: errListenerDown}
	}
	return nil
}
