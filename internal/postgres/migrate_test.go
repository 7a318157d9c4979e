package postgres_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-chat/parley/db"
	"github.com/parley-chat/parley/internal/pgtest"
	"github.com/parley-chat/parley/internal/postgres"
)

// TestMain serves every test of this directory: the postgres package's own
// tests cannot import pgtest (it imports postgres), so tests needing a
// database live in package postgres_test.
func TestMain(m *testing.M) { pgtest.Main(m) }

// MustPool opens a pool on url, closed at the end of the test.
func MustPool(tb testing.TB, url string) *pgxpool.Pool {
	tb.Helper()
	pool, err := pgxpool.New(tb.Context(), url)
	if err != nil {
		tb.Fatalf("open pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

var parleyTables = []string{"users", "refresh_tokens", "rooms", "room_members", "room_events", "messages", "reactions", "room_member_periods"}

// latestMigration is the file name of the newest migration, its version
// and the tables its Up section creates, read from the embedded files.
func latestMigration(tb testing.TB) (name string, version int, creates []string) {
	tb.Helper()
	files, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		tb.Fatalf("list migrations: %v %v", files, err)
	}
	slices.Sort(files)
	body, err := fs.ReadFile(db.Migrations, files[len(files)-1])
	if err != nil {
		tb.Fatal(err)
	}
	name = path.Base(files[len(files)-1])
	if _, err := fmt.Sscanf(name, "%d_", &version); err != nil {
		tb.Fatalf("migration %s: %v", name, err)
	}
	up, _, _ := strings.Cut(string(body), "-- +goose Down")
	for _, m := range regexp.MustCompile(`(?m)^CREATE TABLE (\w+)`).FindAllStringSubmatch(up, -1) {
		creates = append(creates, m[1])
	}
	return name, version, creates
}

func migrationCount(tb testing.TB) int {
	tb.Helper()
	files, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil {
		tb.Fatal(err)
	}
	return len(files)
}

// existingTables returns which of parleyTables exist.
func existingTables(tb testing.TB, pool *pgxpool.Pool) []string {
	tb.Helper()
	var have []string
	for _, name := range parleyTables {
		var exists bool
		if err := pool.QueryRow(tb.Context(), "SELECT to_regclass($1) IS NOT NULL", "public."+name).Scan(&exists); err != nil {
			tb.Fatalf("look up %s: %v", name, err)
		}
		if exists {
			have = append(have, name)
		}
	}
	return have
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, nil))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := MustPool(t, pgtest.NewEmptyDB(t))
	logger := testLogger(t)

	if err := postgres.Migrate(ctx, pool, logger); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if got, want := fmt.Sprint(existingTables(t, pool)), fmt.Sprint(parleyTables); got != want {
		t.Fatalf("after migrate: tables %s, want %s", got, want)
	}
	if err := postgres.Migrate(ctx, pool, logger); err != nil {
		t.Fatalf("migrate again: %v", err)
	}

	var status bytes.Buffer
	if err := postgres.MigrationStatus(ctx, pool, &status); err != nil {
		t.Fatalf("status: %v", err)
	}
	t.Logf("status:\n%s", status.String())
	for _, re := range []string{`(?m)^1\s+applied\s+\S+ \S+\s+00001_accounts\.sql$`, `(?m)^2\s+applied\s+\S+ \S+\s+00002_rooms\.sql$`} {
		if !regexp.MustCompile(re).MatchString(status.String()) {
			t.Errorf("status does not match %s", re)
		}
	}

	// Down undoes the newest migration only.
	latest, version, created := latestMigration(t)
	if err := postgres.MigrateDown(ctx, pool, logger); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
	var left []string
	for _, name := range parleyTables {
		if !slices.Contains(created, name) {
			left = append(left, name)
		}
	}
	if got, want := fmt.Sprint(existingTables(t, pool)), fmt.Sprint(left); got != want {
		t.Fatalf("after down: tables %s, want %s", got, want)
	}
	status.Reset()
	if err := postgres.MigrationStatus(ctx, pool, &status); err != nil {
		t.Fatalf("status: %v", err)
	}
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d\s+pending\s+-\s+%s$`, version, regexp.QuoteMeta(latest))).MatchString(status.String()) {
		t.Errorf("status after down:\n%s", status.String())
	}

	if err := postgres.Migrate(ctx, pool, logger); err != nil {
		t.Fatalf("migrate after down: %v", err)
	}
	if got, want := fmt.Sprint(existingTables(t, pool)), fmt.Sprint(parleyTables); got != want {
		t.Fatalf("after migrate again: tables %s, want %s", got, want)
	}
}

func TestMigrateDown(t *testing.T) {
	t.Parallel()
	t.Run("ErrNothingApplied", func(t *testing.T) {
		t.Parallel()
		pool := MustPool(t, pgtest.NewEmptyDB(t))
		if err := postgres.MigrateDown(t.Context(), pool, nil); err == nil {
			t.Error("undid a migration of an empty database")
		}
	})
}

// TestMigrateConcurrent starts two replicas at once on an empty database:
// both must succeed, one of them after waiting for the other's lock.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	pools := []*pgxpool.Pool{MustPool(t, url), MustPool(t, url)}
	start := time.Now()
	errs := make(chan error, len(pools))
	for i, pool := range pools {
		logger := testLogger(t).With("replica", i)
		go func() { errs <- postgres.Migrate(t.Context(), pool, logger) }()
	}
	for range pools {
		if err := <-errs; err != nil {
			t.Errorf("migrate: %v", err)
		}
	}
	elapsed := time.Since(start)
	t.Logf("both migrated in %v", elapsed)
	// The waiting replica retries the lock every second.
	if elapsed > 10*time.Second {
		t.Errorf("migrating took %v", elapsed)
	}
	if got, want := fmt.Sprint(existingTables(t, pools[0])), fmt.Sprint(parleyTables); got != want {
		t.Errorf("tables %s, want %s", got, want)
	}
	var applied, distinct int
	err := pools[0].QueryRow(t.Context(), "SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0").Scan(&applied, &distinct)
	if err != nil {
		t.Fatalf("read versions: %v", err)
	}
	if n := migrationCount(t); applied != n || distinct != n {
		t.Errorf("goose_db_version holds %d rows for %d versions, want %d for %d", applied, distinct, n, n)
	}
}
