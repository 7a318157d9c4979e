package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { Main(m) }

// MustConnect opens a connection closed at the end of the test.
func MustConnect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func tables(tb testing.TB, conn *pgx.Conn) []string {
	tb.Helper()
	rows, err := conn.Query(tb.Context(), "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
	if err != nil {
		tb.Fatalf("list tables: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatalf("list tables: %v", err)
	}
	return names
}

func databaseExists(tb testing.TB, name string) bool {
	tb.Helper()
	var exists bool
	err := srv.admin.QueryRow(tb.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		tb.Fatalf("find database: %v", err)
	}
	return exists
}

func TestNewDB(t *testing.T) {
	t.Parallel()
	t.Run("Migrated", func(t *testing.T) {
		t.Parallel()
		conn := MustConnect(t, NewDB(t))
		got := tables(t, conn)
		// The first migrations' tables; later ones add more.
		for _, want := range []string{"goose_db_version", "refresh_tokens", "room_events", "room_members", "rooms", "users"} {
			if !slices.Contains(got, want) {
				t.Errorf("tables %s lack %s", got, want)
			}
		}
	})
	t.Run("Isolated", func(t *testing.T) {
		t.Parallel()
		a, b := MustConnect(t, NewDB(t)), MustConnect(t, NewDB(t))
		if _, err := a.Exec(t.Context(), "INSERT INTO users (id, username, display_name, password_hash) VALUES (gen_random_uuid(), 'ann', 'Ann', 'x')"); err != nil {
			t.Fatalf("insert: %v", err)
		}
		var n int
		if err := b.QueryRow(t.Context(), "SELECT count(*) FROM users").Scan(&n); err != nil || n != 0 {
			t.Errorf("other database has %d users (%v)", n, err)
		}
	})
	t.Run("DroppedAfterTest", func(t *testing.T) {
		t.Parallel()
		var name string
		t.Run("Use", func(t *testing.T) {
			conn := MustConnect(t, NewDB(t))
			if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
				t.Fatal(err)
			}
			// An open connection must not stop the drop.
		})
		if name == "" || databaseExists(t, name) {
			t.Errorf("database %q not dropped", name)
		}
	})
	t.Run("Parallel", func(t *testing.T) {
		t.Parallel()
		for i := range 10 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				conn := MustConnect(t, NewDB(t))
				if _, err := conn.Exec(t.Context(), "SELECT FROM rooms"); err != nil {
					t.Error(err)
				}
			})
		}
	})
}

func TestNewEmptyDB(t *testing.T) {
	t.Parallel()
	conn := MustConnect(t, NewEmptyDB(t))
	if got := tables(t, conn); len(got) != 0 {
		t.Errorf("empty database has tables %v", got)
	}
}

// TestCreateTemplateConcurrent races several sessions, as test binaries of
// several packages do, to create one template.
func TestCreateTemplateConcurrent(t *testing.T) {
	t.Parallel()
	mustServer(t)
	name := "parley_tmpl_test_" + randomHex(4)
	t.Cleanup(func() {
		if _, err := srv.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop template: %v", err)
		}
	})
	const racers = 4
	errs := make(chan error, racers)
	for range racers {
		go func() {
			pool, err := pgxpool.New(t.Context(), srv.url) // a session of its own
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- createTemplate(t.Context(), pool, srv.url, name, slog.New(slog.DiscardHandler))
		}()
	}
	for range racers {
		if err := <-errs; err != nil {
			t.Errorf("create template: %v", err)
		}
	}
	var allowConn bool
	if err := srv.admin.QueryRow(t.Context(), "SELECT datallowconn FROM pg_database WHERE datname = $1", name).Scan(&allowConn); err != nil {
		t.Fatalf("find template: %v", err)
	}
	if allowConn {
		t.Error("template allows connections")
	}
	if databaseExists(t, name+"_build") {
		t.Error("build database left behind")
	}
	conn := MustConnect(t, srv.newDB(t, name))
	if got, want := fmt.Sprint(tables(t, conn)), fmt.Sprint(tables(t, MustConnect(t, NewDB(t)))); got != want {
		t.Errorf("clone has tables %s, want those of a migrated database, %s", got, want)
	}
}

func TestDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"URL", "postgres://postgres@/postgres?host=/tmp/parley-0123abcd&port=5432&sslmode=disable",
			"postgres://postgres@/x?host=/tmp/parley-0123abcd&port=5432&sslmode=disable"},
		{"URLWithHost", "postgresql://u:p@db.example:5433/?sslmode=require", "postgresql://u:p@db.example:5433/x?sslmode=require"},
		{"KeywordValue", "host=/tmp/s dbname=postgres", "host=/tmp/s dbname=postgres dbname='x'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := databaseURL(tc.in, "x")
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("parse %s: %v", got, err)
			}
			if cfg.Database != "x" {
				t.Errorf("database %q, want x", cfg.Database)
			}
		})
	}
}
