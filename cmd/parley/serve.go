package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/internal/auth"
	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/httpapi"
	"github.com/parley-chat/parley/internal/limits"
	"github.com/parley-chat/parley/internal/localpg"
	"github.com/parley-chat/parley/internal/metrics"
	"github.com/parley-chat/parley/internal/postgres"
	"github.com/parley-chat/parley/internal/stream"
)

// poolSize bounds each replica's database connections.
const poolSize = 24

// shutdownTimeout is how long SIGTERM waits for in-flight requests.
const shutdownTimeout = 15 * time.Second

// idleTimeout closes a keep-alive connection idle this long. A proxy keeping
// upstream connections must close them sooner (deploy/nginx/parley.conf:
// keepalive_timeout 60s), or it may send a request on a connection Parley
// is closing.
const idleTimeout = 2 * time.Minute

// Main is a running Parley replica. End-to-end tests reuse it.
type Main struct {
	Config Config
	Logger *slog.Logger

	cluster *localpg.Cluster
	pool    *pgxpool.Pool
	db      *postgres.DB
	ln      net.Listener
	http    *http.Server
	api     *httpapi.Server
	pprof   *http.Server
	served  chan error

	metrics      *metrics.Metrics
	hub          *stream.Hub
	listener     *postgres.Listener
	stopListener context.CancelFunc
	listenerDone chan struct{}
	draining     atomic.Bool
	// signals sends the ephemeral events and keeps presence; presence
	// counts this replica's streams per user.
	signals    *postgres.Signals
	presence   *stream.Presence
	ephemeral  *stream.Ephemeral
	signalDone chan struct{}
}

// Open connects the database (starting the private cluster if no URL is
// set), migrates it, and starts serving in the background.
func (m *Main) Open(ctx context.Context) error {
	if err := m.Config.validate(true); err != nil {
		return err
	}
	// Load the certificate before touching the database: a bad file fails
	// the start at once.
	tlsConfig, err := m.Config.tlsConfig()
	if err != nil {
		return err
	}
	url, secret, err := m.database(ctx)
	if err != nil {
		return err
	}
	if m.pool, err = postgres.OpenPool(ctx, url, poolSize, m.Config.DBTimeout); err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, m.pool, m.Logger); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tokens, err := auth.NewTokens(secret, m.Config.JWTIssuer, m.Config.JWTAudience, m.Config.AccessTTL)
	if err != nil {
		return fmt.Errorf("PARLEY_JWT_SECRET: %w", err)
	}
	lim := m.Config.Limits
	streams := limits.NewStreams(lim.StreamsPerUser, lim.MaxStreams)
	m.metrics = metrics.New(metrics.Sources{
		Hub: func() (int, int) {
			st := m.hub.Stats()
			return st.Rooms, st.Subscribers
		},
		ListenerConnected: func() bool { return m.listener.Connected() },
		Pool:              func() metrics.PoolStat { return m.pool.Stat() },
		Streams: func() metrics.StreamCaps {
			st := streams.Stats()
			return metrics.StreamCaps{Open: st.Open, RefusedUser: st.RefusedUser, RefusedReplica: st.RefusedReplica}
		},
		SignalsQueued: func() int64 { return m.ephemeral.Queued() },
	})
	m.signals = postgres.NewSignals(m.pool, m.Logger, postgres.SignalsConfig{
		Interval:        m.Config.SignalInterval,
		PresenceTimeout: m.Config.PresenceTimeout,
		PresenceGrace:   m.Config.PresenceGrace,
		Observer:        m.metrics,
	})
	db := postgres.NewDB(m.pool, postgres.WithLimits(postgres.Limits{
		PostRate: lim.PostRate, PostBurst: lim.PostBurst,
		LoginFailures: lim.LoginFailures, LoginFailuresPerUser: lim.LoginFailuresPerUser, LoginWindow: lim.LoginWindow,
	}), postgres.WithSignaler(m.signals))
	m.db = db
	accounts, err := auth.NewService(db, tokens, m.Config.RefreshTTL,
		auth.WithLoginThrottle(db), auth.WithHashGate(limits.NewGate(0, limits.HashWait)))
	if err != nil {
		return err
	}
	tickets, err := auth.NewTickets(db, m.Config.StreamTicketTTL)
	if err != nil {
		return err
	}
	if err := m.startListener(ctx, url, db); err != nil {
		return err
	}
	// User stream cursors are MACed with a key from the JWT secret, bound
	// to this database cluster (their horizons are its transaction ids).
	clusterID, err := db.ClusterID(ctx)
	if err != nil {
		return err
	}
	cursors := chat.NewCursorCodec(secret, clusterID)
	api := httpapi.New(httpapi.Options{
		Accounts:    accounts,
		Rooms:       db,
		Subscriber:  m.hub,
		Events:      db,
		UserFeeds:   stream.NewUserFeeds(m.hub, db, db, cursors),
		Cursors:     cursors,
		Tickets:     tickets,
		Signals:     m.signals,
		Ready:       func(ctx context.Context) error { return m.ready(ctx, db) },
		Metrics:     m.metrics.Handler(),
		Observer:    m.metrics,
		CORSOrigins: m.Config.CORSOrigins,
		Proxies:     lim.TrustedProxies,
		Streams:     streams,
		Heartbeat:   m.Config.Heartbeat,
		ReadTimeout: m.Config.ReadTimeout,
		Version:     buildVersion(),
		Logger:      m.Logger,
	})
	m.api = api
	// Accepted connections drop a peer that vanished (see
	// limits.DeadPeerListenConfig), so its streams free their slots.
	lc := limits.DeadPeerListenConfig(lim.TCPUserTimeout)
	if m.ln, err = lc.Listen(ctx, "tcp", m.Config.Addr); err != nil {
		return fmt.Errorf("PARLEY_ADDR: listen on %s: %w", m.Config.Addr, err)
	}
	// No ReadTimeout: it would end every stream at the deadline. The
	// body's read is bounded per request instead (httpapi's checkBody).
	m.http = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: m.Config.ReadHeaderTimeout,
		IdleTimeout:       idleTimeout,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	if tlsConfig != nil {
		// ServeTLS sets up HTTP/2 on the server; the certificate is
		// already in TLSConfig.
		go func() { m.served <- m.http.ServeTLS(m.ln, "", "") }()
	} else {
		go func() { m.served <- m.http.Serve(m.ln) }()
	}
	if m.Config.PprofAddr != "" {
		if err := m.startPprof(ctx); err != nil {
			return err
		}
	}
	m.Logger.Info("parley serving", "addr", m.ln.Addr().String(), "tls", tlsConfig != nil)
	return nil
}

// startListener starts the hub and the LISTEN loops feeding it (durable
// events, and ephemeral ones), waits for the first LISTENs so no stream
// can start before events flow, and starts sending signals.
func (m *Main) startListener(ctx context.Context, url string, db *postgres.DB) error {
	m.presence = stream.NewPresence(m.signals, m.Config.PresenceGrace)
	m.signals.SetOnline(m.presence.Online)
	m.hub = stream.NewHub(db, m.Logger, stream.DefaultQueueLen, stream.WithObserver(m.metrics), stream.WithPresence(m.presence))
	m.listener = postgres.NewListener(url, m.hub, m.Logger, postgres.OnReconnect(m.metrics.ListenerReconnected))
	// This replica's own commits reach its streams without waiting for
	// their NOTIFY to come back.
	db.DeliverLocally(m.listener.Local)
	m.ephemeral = stream.NewEphemeral(m.hub)
	signalListener := postgres.NewSignalListener(url, m.pool, m.ephemeral, m.Logger)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stopListener = cancel
	m.listenerDone, m.signalDone = make(chan struct{}), make(chan struct{})
	up, signalsUp := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.listenerDone)
		m.listener.Run(lctx, up)
	}()
	go func() {
		defer close(m.signalDone)
		signalListener.Run(lctx, signalsUp)
	}()
	timeout := time.After(30 * time.Second)
	for _, ch := range []chan struct{}{up, signalsUp} {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return errors.New("listener: no LISTEN connection after 30s")
		}
	}
	return m.signals.Start(ctx)
}

// ready is readiness: not shutting down, the database answers and the
// listener is connected.
func (m *Main) ready(ctx context.Context, db *postgres.DB) error {
	if m.draining.Load() {
		return errors.New("shutting down")
	}
	if err := m.listener.Ready(); err != nil {
		return err
	}
	return db.Ping(ctx)
}

// Addr is the address Parley listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Close shuts down gracefully: in-flight requests finish, then the
// database and the private cluster stop.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	m.draining.Store(true)
	if m.presence != nil {
		// Streams ending now do not take their users offline one by one:
		// the replica hands them over as a whole (signals.Close).
		m.presence.Stop()
	}
	if m.hub != nil {
		// Shutdown waits for open streams without ending them: end them
		// now so their clients reconnect to another replica.
		m.hub.Close()
	}
	if m.http != nil {
		sctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
		if err := m.http.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down http: %w", err))
			_ = m.http.Close()
		}
		// Shutdown does not wait for streams detached from net/http:
		// their subscriptions ended above, so they end now.
		if err := m.api.WaitStreams(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down streams: %w", err))
		}
		cancel()
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
	}
	if m.pprof != nil {
		_ = m.pprof.Close()
	}
	if m.signals != nil {
		m.signals.Close(ctx)
	}
	if m.stopListener != nil {
		m.stopListener()
		<-m.listenerDone
		<-m.signalDone
	}
	if m.db != nil {
		// Announce what committed before the pool goes (the other
		// replicas' sweeps would find it, later).
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_ = m.db.WaitAnnounced(actx)
		cancel()
	}
	if m.pool != nil {
		m.pool.Close()
	}
	if m.cluster != nil {
		if err := m.cluster.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop private postgres: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Wait blocks until the server stops by itself or ctx ends.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.served:
		m.served <- err
		return fmt.Errorf("serve: %w", err)
	}
}

// database returns the database URL and JWT secret, starting the private
// cluster when no URL is configured.
func (m *Main) database(ctx context.Context) (string, []byte, error) {
	if m.Config.DatabaseURL != "" {
		return m.Config.DatabaseURL, []byte(m.Config.JWTSecret), nil
	}
	url, err := m.startCluster(ctx)
	if err != nil {
		return "", nil, err
	}
	if m.Config.JWTSecret != "" {
		return url, []byte(m.Config.JWTSecret), nil
	}
	secret, err := dataDirSecret(m.Config.DataDir)
	return url, secret, err
}

// startCluster starts the private cluster and makes sure its parley
// database exists.
func (m *Main) startCluster(ctx context.Context) (string, error) {
	c, err := localpg.Start(ctx, m.Config.DataDir, m.Logger)
	if err != nil {
		return "", err
	}
	m.cluster = c
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to private postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE DATABASE parley`)
	if err != nil && !strings.Contains(err.Error(), "42P04") { // duplicate_database
		return "", fmt.Errorf("create parley database: %w", err)
	}
	return c.URL("parley"), nil
}

// dataDirSecret reads the JWT secret kept in the data dir, generating it on
// first use, so restarts keep sessions valid.
func dataDirSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < auth.MinSecretLen {
			return nil, fmt.Errorf("%s: secret shorter than %d bytes; delete it to generate a new one", path, auth.MinSecretLen)
		}
		return []byte(s), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read jwt secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate jwt secret: %w", err)
	}
	secret := hex.EncodeToString(raw)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return dataDirSecret(dir) // another replica wrote it first
	} else if err != nil {
		return nil, fmt.Errorf("write jwt secret: %w", err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, secret+"\n"); err != nil {
		return nil, fmt.Errorf("write jwt secret: %w", err)
	}
	return []byte(secret), nil
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// serve runs a replica until ctx ends (SIGTERM or SIGINT).
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	m := &Main{Config: cfg, Logger: newLogger(stderr)}
	if err := m.Open(ctx); err != nil {
		_ = m.Close(context.WithoutCancel(ctx))
		return err
	}
	waitErr := m.Wait(ctx)
	m.Logger.Info("shutting down")
	return errors.Join(waitErr, m.Close(context.WithoutCancel(ctx)))
}
