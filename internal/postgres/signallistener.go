package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/chat"
)

// SignalListenerAppName is the application_name of the signal LISTEN
// connections.
const SignalListenerAppName = "parley-signals"

// SignalListener holds this replica's dedicated LISTEN connection on
// SignalChannel, apart from the durable events' Listener, and hands each
// batch to a sink with the rooms of the presence subjects in it. Signals
// sent while it reconnects are lost, as ephemeral events may be: there is
// nothing to catch up.
type SignalListener struct {
	url       string
	pool      *pgxpool.Pool
	sink      chat.SignalSink
	logger    *slog.Logger
	connected atomic.Bool
}

// NewSignalListener returns a listener for the database at url, reading
// presence subjects' rooms through pool.
func NewSignalListener(url string, pool *pgxpool.Pool, sink chat.SignalSink, logger *slog.Logger) *SignalListener {
	return &SignalListener{url: url, pool: pool, sink: sink, logger: logger}
}

// Connected reports whether the LISTEN connection is up.
func (l *SignalListener) Connected() bool { return l.connected.Load() }

// Run listens until ctx ends; ready is closed once the first LISTEN is in
// place.
func (l *SignalListener) Run(ctx context.Context, ready chan<- struct{}) {
	runListenSessions(ctx, l.logger, "signal listener", ready, func(ctx context.Context, _ bool, up func()) error {
		return l.session(ctx, up)
	})
}

func (l *SignalListener) session(ctx context.Context, up func()) error {
	conn, err := dialListen(ctx, l.url, SignalListenerAppName, SignalChannel)
	if err != nil {
		return err
	}
	defer func() {
		l.connected.Store(false)
		closeListenConn(ctx, conn)
	}()
	l.connected.Store(true)
	up()
	for {
		wctx, cancel := context.WithTimeout(ctx, idlePing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.deliver(ctx, n.Payload)
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// deliver decodes one payload, reads where its presence signals go, and
// hands it to the sink. A batch whose rooms cannot be read loses its
// presence signals, not the others.
func (l *SignalListener) deliver(ctx context.Context, payload string) {
	at, sigs, err := DecodeSignals(payload)
	if err != nil {
		l.logger.Error("bad signal notification", "err", err)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	rooms, err := presenceRooms(rctx, l.pool, sigs)
	cancel()
	if err != nil {
		l.logger.Warn("signals: presence rooms", "err", err)
	}
	l.sink.DeliverSignals(at, sigs, rooms)
}

// readTimeout bounds the read of presence subjects' rooms.
const readTimeout = 2 * time.Second
