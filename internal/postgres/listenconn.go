package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/logs"
)

// What the durable events' Listener and the SignalListener share: a
// dedicated LISTEN connection, and a loop that runs one session on it after
// another, with backoff, until the replica stops.

// Reconnection backoff: from listenBackoffMin, doubling to listenBackoffMax,
// and back to the start once a session is listening again.
const (
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = 2 * time.Second
	listenConnect    = 5 * time.Second // to connect to the database
)

// listenSession runs one LISTEN connection until it fails. It calls up once
// it is listening; reconnect says whether an earlier session ran before.
type listenSession func(ctx context.Context, reconnect bool, up func()) error

// runListenSessions runs session after session until ctx ends. ready is
// closed the first time a session is listening. what names the listener in
// the log line of each reconnection.
func runListenSessions(ctx context.Context, logger *slog.Logger, what string, ready chan<- struct{}, session listenSession) {
	backoff := listenBackoffMin
	first := true
	for ctx.Err() == nil {
		err := session(ctx, !first, func() {
			if first {
				first = false
				close(ready)
			}
			backoff = listenBackoffMin
		})
		if ctx.Err() != nil {
			return
		}
		logger.Warn(what+" disconnected; reconnecting", "err", err, logs.Millis("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenBackoffMax)
	}
}

// dialListen opens a connection to url named appName in pg_stat_activity,
// and LISTENs on channel. The caller closes it with closeListenConn.
func dialListen(ctx context.Context, url, appName, channel string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.RuntimeParams["application_name"] = appName
	cctx, cancel := context.WithTimeout(ctx, listenConnect)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		closeListenConn(ctx, conn)
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// closeListenConn closes a LISTEN connection, even after ctx has ended,
// waiting at most a second for the server.
func closeListenConn(ctx context.Context, conn *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = conn.Close(cctx)
}
