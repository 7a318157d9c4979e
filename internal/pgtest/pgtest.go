// Package pgtest gives each test its own real Postgres database: a fresh
// clone of a migrated template (NewDB) or an empty one (NewEmptyDB), dropped
// when the test ends.
//
// The server is the one PARLEY_TEST_DATABASE_URL names (make test starts one
// for all packages), or else a private cluster this test binary starts on
// first use and stops when its tests are done, so that a plain
// go test ./internal/x works. A package using pgtest calls Main from its
// TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/db"
	"github.com/parley-chat/parley/internal/localpg"
	"github.com/parley-chat/parley/internal/logs"
	"github.com/parley-chat/parley/internal/postgres"
)

// envURL names the variable holding the URL of a server to make test
// databases on. Its user needs CREATEDB; pgtest never reads
// PARLEY_DATABASE_URL, so tests cannot touch a real deployment's database.
const envURL = "PARLEY_TEST_DATABASE_URL"

// srv is the test binary's server. It is package state, set by Main only,
// because the server is shared by every test of the binary and TestMain has
// no other way to hand it to them.
var srv *server

type server struct {
	logger *slog.Logger

	connectOnce sync.Once
	url         string
	admin       *pgxpool.Pool
	cluster     *localpg.Cluster // nil when envURL names the server
	connectErr  error

	templateOnce sync.Once
	template     string
	templateErr  error
}

// Main runs the tests of a package that uses pgtest, then stops the private
// cluster if one was started, and exits with the tests' exit code. Call it
// from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit, for a TestMain with its own clean-up: it
// returns the exit code.
func Run(m *testing.M) int {
	srv = &server{
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	code := m.Run()
	if err := srv.close(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// NewDB creates a database holding Parley's migrated schema and returns its
// URL. The database is dropped when the test ends.
func NewDB(tb testing.TB) string {
	tb.Helper()
	s := mustServer(tb)
	tmpl, err := s.ensureTemplate()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return s.newDB(tb, tmpl)
}

// NewEmptyDB creates an empty database and returns its URL. The database is
// dropped when the test ends.
func NewEmptyDB(tb testing.TB) string {
	tb.Helper()
	return mustServer(tb).newDB(tb, "")
}

func mustServer(tb testing.TB) *server {
	tb.Helper()
	if srv == nil {
		tb.Fatal("pgtest: call pgtest.Main(m) from the package's TestMain")
	}
	srv.connectOnce.Do(srv.connect)
	if srv.connectErr != nil {
		tb.Fatalf("pgtest: %v", srv.connectErr)
	}
	return srv
}

// connect finds the server, starting a private cluster if none is given,
// and opens a pool on its administrative database.
func (s *server) connect() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.url = os.Getenv(envURL)
	if s.url == "" {
		if s.connectErr = s.startCluster(ctx); s.connectErr != nil {
			return
		}
	}
	admin, err := pgxpool.New(ctx, s.url)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		s.connectErr = fmt.Errorf("connect to test server: %w", err)
		return
	}
	s.admin = admin
}

func (s *server) startCluster(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "parley-pgtest-")
	if err != nil {
		return fmt.Errorf("create cluster dir: %w", err)
	}
	// Let the postgres user reach the cluster when tests run as root; the
	// cluster's own directory inside stays private.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("create cluster dir: %w", err)
	}
	c, err := localpg.Start(ctx, dir, s.logger, localpg.Throwaway())
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("start a private Postgres cluster (or set %s): %w", envURL, err)
	}
	s.cluster = c
	s.url = c.URL("postgres")
	return nil
}

func (s *server) close() error {
	if s.admin != nil {
		s.admin.Close()
	}
	if s.cluster != nil {
		if err := s.cluster.Stop(); err != nil {
			return fmt.Errorf("stop cluster: %w", err)
		}
	}
	return nil
}

// newDB creates a database, a clone of template unless that is "".
func (s *server) newDB(tb testing.TB, template string) string {
	tb.Helper()
	name := "parley_test_" + randomHex(8)
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	// Cloning fails while anyone is connected to the template (the
	// template template1 included): retry briefly.
	if err := retryInUse(ctx, func() error { _, err := s.admin.Exec(ctx, sql); return err }); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return databaseURL(s.url, name)
}

// ensureTemplate returns the name of the migrated template database,
// creating it on first use.
func (s *server) ensureTemplate() (string, error) {
	s.templateOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		s.template, s.templateErr = templateName()
		if s.templateErr == nil {
			s.templateErr = createTemplate(ctx, s.admin, s.url, s.template, s.logger)
		}
	})
	return s.template, s.templateErr
}

// templateName names the template after the migrations' contents, so a
// server shared across runs and branches keeps one template per schema.
func templateName() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(db.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(db.Migrations, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return "parley_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// createTemplate creates the migrated template database name unless it
// exists. Test binaries of several packages run at once, so they take turns
// under an advisory lock. The template is built under another name and
// renamed once complete, so a binary killed halfway leaves no broken
// template; and it refuses connections, so nothing connected to it can make
// a clone fail.
func createTemplate(ctx context.Context, admin *pgxpool.Pool, serverURL, name string, logger *slog.Logger) error {
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", name); err != nil {
		return fmt.Errorf("lock template: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", name); err != nil {
			conn.Conn().Close(context.Background()) // closing the session releases the lock
		}
	}()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("find template: %w", err)
	}
	if exists {
		return nil
	}
	start := time.Now()
	build := name + "_build"
	buildID := pgx.Identifier{build}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+buildID+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop unfinished template: %w", err)
	}
	if err := retryInUse(ctx, func() error { _, err := conn.Exec(ctx, "CREATE DATABASE "+buildID); return err }); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	if err := migrate(ctx, databaseURL(serverURL, build), logger); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+buildID+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("close template to connections: %w", err)
	}
	// The migration pool's backends may take a moment to exit.
	rename := "ALTER DATABASE " + buildID + " RENAME TO " + pgx.Identifier{name}.Sanitize()
	if err := retryInUse(ctx, func() error { _, err := conn.Exec(ctx, rename); return err }); err != nil {
		return fmt.Errorf("rename template: %w", err)
	}
	logger.Debug("template database created", "name", name, logs.Millis("duration", time.Since(start)))
	return nil
}

func migrate(ctx context.Context, url string, logger *slog.Logger) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to template: %w", err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, logger); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

// retryInUse runs fn until it stops failing with object_in_use (55006),
// which CREATE DATABASE and ALTER DATABASE report while someone is
// connected to the database they copy or rename, for up to 10 seconds.
func retryInUse(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	delay := 10 * time.Millisecond
	for {
		err := fn()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// databaseURL returns serverURL with its database replaced by name. It
// takes URLs and keyword/value connection strings.
func databaseURL(serverURL, name string) string {
	if strings.HasPrefix(serverURL, "postgres://") || strings.HasPrefix(serverURL, "postgresql://") {
		if u, err := url.Parse(serverURL); err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	return serverURL + " dbname='" + name + "'"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
