// Package cli tests the parley binary as an operator meets it: help,
// migrations, start-up checks, replicas starting together, and running with
// no configuration at all on the private Postgres cluster.
package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/db"
	"github.com/parley-chat/parley/internal/e2e"
	"github.com/parley-chat/parley/internal/pgtest"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// env is this process's environment without PARLEY_* settings, plus extra:
// each command gets exactly the configuration the test gives it. The binary
// is built with -race, whose runtime otherwise sleeps a second before every
// successful exit.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") && !strings.HasPrefix(kv, "GORACE=") {
			out = append(out, kv)
		}
	}
	return append(append(out, "GORACE=atexit_sleep_ms=0 halt_on_error=1"), extra...)
}

// Result is a finished parley command.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// MustRun runs the parley binary with args in dir (the current directory
// when "") and waits for it to exit.
func MustRun(tb testing.TB, dir string, environ []string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Binary(), args...)
	cmd.Dir, cmd.Env = dir, environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		tb.Fatalf("run parley %v: %v", args, err)
	}
	if ctx.Err() != nil {
		tb.Fatalf("parley %v did not exit in time:\n%s", args, &stderr)
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
}

// MustSucceed runs parley and fails the test unless it exits 0.
func MustSucceed(tb testing.TB, dir string, environ []string, args ...string) Result {
	tb.Helper()
	r := MustRun(tb, dir, environ, args...)
	if r.Code != 0 {
		tb.Fatalf("parley %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

func TestHelp(t *testing.T) {
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr string
	}{
		{"NoArguments", nil, 0, []string{"Usage:", "parley serve", "parley migrate up|down|status", "parley openapi"}, ""},
		{"Help", []string{"help"}, 0, []string{"Usage:", "PARLEY_DATABASE_URL"}, ""},
		{"ServeFlags", []string{"serve", "-h"}, 0, nil, "PARLEY_JWT_SECRET"},
		{"ErrUnknownCommand", []string{"frobnicate"}, 2, nil, `unknown command "frobnicate"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := MustRun(t, "", env(), tt.args...)
			if r.Code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, tt.wantCode, r.Stdout, r.Stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(r.Stdout, w) {
					t.Fatalf("stdout lacks %q:\n%s", w, r.Stdout)
				}
			}
			if !strings.Contains(r.Stderr, tt.wantStderr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.wantStderr, r.Stderr)
			}
		})
	}
}

// migration is one of the embedded goose migrations.
type migration struct {
	version int
	tables  []string // the tables its Up section creates
	indexes []string // the indexes it creates
	drops   []string // the indexes it drops
}

var (
	createTable = regexp.MustCompile(`(?i)CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	createIndex = regexp.MustCompile(`(?i)CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	dropIndex   = regexp.MustCompile(`(?i)DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?(\w+)`)
)

// MustMigrations lists the embedded migrations in order.
func MustMigrations(tb testing.TB) []migration {
	tb.Helper()
	files, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		tb.Fatalf("list migrations: %v (%d found)", err, len(files))
	}
	slices.Sort(files)
	var out []migration
	for _, f := range files {
		b, err := fs.ReadFile(db.Migrations, f)
		if err != nil {
			tb.Fatal(err)
		}
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil {
			tb.Fatalf("migration %s: no version: %v", f, err)
		}
		up, _, _ := strings.Cut(string(b), "-- +goose Down")
		m := migration{version: v}
		for _, sm := range createTable.FindAllStringSubmatch(up, -1) {
			m.tables = append(m.tables, strings.ToLower(sm[1]))
		}
		for _, sm := range createIndex.FindAllStringSubmatch(up, -1) {
			m.indexes = append(m.indexes, strings.ToLower(sm[1]))
		}
		for _, sm := range dropIndex.FindAllStringSubmatch(up, -1) {
			m.drops = append(m.drops, strings.ToLower(sm[1]))
		}
		out = append(out, m)
	}
	return out
}

// Schema is what a database holds: its tables and its goose version.
type Schema struct {
	Tables  []string // sorted, goose's own table left out
	Version int      // 0 when nothing is applied
}

// MustSchema reads the schema of the database at url.
func MustSchema(tb testing.TB, url string) Schema {
	tb.Helper()
	ctx := tb.Context()
	conn := e2e.MustConnect(tb, url)
	var s Schema
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_name <> 'goose_db_version' ORDER BY table_name`)
	if err != nil {
		tb.Fatal(err)
	}
	if s.Tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		tb.Fatal(err)
	}
	var goose bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.goose_db_version') IS NOT NULL`).Scan(&goose); err != nil {
		tb.Fatal(err)
	}
	if goose {
		err := conn.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version
			WHERE is_applied AND version_id > 0`).Scan(&s.Version)
		if err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// schemaAt is the schema once the first n migrations are applied.
func schemaAt(ms []migration, n int) Schema {
	s := Schema{Tables: []string{}}
	for _, m := range ms[:n] {
		s.Tables = append(s.Tables, m.tables...)
		s.Version = m.version
	}
	slices.Sort(s.Tables)
	return s
}

// statusStates reads `parley migrate status` output into version -> state.
func statusStates(tb testing.TB, out string) map[int]string {
	tb.Helper()
	states := map[int]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.Atoi(f[0]); err == nil {
			states[v] = f[1]
		}
	}
	return states
}

// TestMigrate runs `parley migrate` on an empty database: up applies every
// migration, down undoes exactly the last one and keeps the data of the
// others, up applies it again; status tells each state. No JWT secret is
// needed.
func TestMigrate(t *testing.T) {
	ms := MustMigrations(t)
	if len(ms) < 2 {
		t.Fatalf("%d migrations: this test wants at least 2", len(ms))
	}
	url := pgtest.NewEmptyDB(t)
	environ := env("PARLEY_DATABASE_URL=" + url)
	all, allButLast := schemaAt(ms, len(ms)), schemaAt(ms, len(ms)-1)
	last := ms[len(ms)-1]
	if len(last.tables) == 0 && len(last.indexes) == 0 && len(last.drops) == 0 {
		t.Fatalf("the last migration creates no table or index and drops no index, so down cannot be checked by what it changes")
	}
	// states wants every migration applied but the last n.
	states := func(pending int) map[int]string {
		want := map[int]string{}
		for i, m := range ms {
			want[m.version] = "applied"
			if i >= len(ms)-pending {
				want[m.version] = "pending"
			}
		}
		return want
	}

	steps := []struct {
		name        string
		args        []string
		want        Schema
		wantPending int
	}{
		{"StatusEmpty", []string{"migrate", "status"}, Schema{Tables: []string{}}, len(ms)},
		{"Up", []string{"migrate", "up"}, all, 0},
		{"UpAgainChangesNothing", []string{"migrate", "up"}, all, 0},
		{"DownUndoesOne", []string{"migrate", "down"}, allButLast, 1},
		{"UpAfterDown", []string{"migrate", "up"}, all, 0},
	}
	var aliceID string
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			MustSucceed(t, "", environ, st.args...)
			got := MustSchema(t, url)
			if !slices.Equal(got.Tables, st.want.Tables) || got.Version != st.want.Version {
				t.Fatalf("schema %+v, want %+v", got, st.want)
			}
			// The last migration's indexes come and go with it, and those
			// it drops go and come back.
			indexExists := func(ix string) bool {
				var exists bool
				if err := e2e.MustConnect(t, url).QueryRow(t.Context(), `SELECT to_regclass('public.' || $1) IS NOT NULL`, ix).Scan(&exists); err != nil {
					t.Fatal(err)
				}
				return exists
			}
			for _, ix := range last.indexes {
				if exists, want := indexExists(ix), got.Version == last.version; exists != want {
					t.Fatalf("index %s exists: %v, want %v", ix, exists, want)
				}
			}
			for _, ix := range last.drops {
				if exists, want := indexExists(ix), got.Version != 0 && got.Version != last.version; exists != want {
					t.Fatalf("index %s (dropped by the last migration) exists: %v, want %v", ix, exists, want)
				}
			}
			status := MustSucceed(t, "", environ, "migrate", "status")
			if got, want := statusStates(t, status.Stdout), states(st.wantPending); !mapsEqual(got, want) {
				t.Fatalf("status %v, want %v:\n%s", got, want, status.Stdout)
			}
			if got.Version == 0 {
				return
			}
			// A user stored after the first up survives down and up.
			conn := e2e.MustConnect(t, url)
			var err error
			if aliceID == "" {
				err = conn.QueryRow(t.Context(), `INSERT INTO users (id, username, display_name, password_hash)
					VALUES (gen_random_uuid(), 'alice', 'Alice', 'x') RETURNING id`).Scan(&aliceID)
			} else {
				var id string
				err = conn.QueryRow(t.Context(), `SELECT id FROM users WHERE username = 'alice'`).Scan(&id)
				if err == nil && id != aliceID {
					err = fmt.Errorf("alice is %s, want %s", id, aliceID)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestServeRefusesBadConfig: serve fails at start, naming the setting, and
// does not touch the database.
func TestServeRefusesBadConfig(t *testing.T) {
	url := pgtest.NewEmptyDB(t)
	secret := e2e.Secret(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not-pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  []string
		want string
	}{
		{"ErrNoSecret", []string{"PARLEY_DATABASE_URL=" + url}, "PARLEY_JWT_SECRET"},
		{"ErrShortSecret", []string{"PARLEY_DATABASE_URL=" + url, "PARLEY_JWT_SECRET=" + secret[:31]}, "PARLEY_JWT_SECRET"},
		{"ErrBadAccessTTL", []string{"PARLEY_DATABASE_URL=" + url, "PARLEY_JWT_SECRET=" + secret, "PARLEY_ACCESS_TTL=soon"}, "PARLEY_ACCESS_TTL"},
		{"ErrBadHeartbeat", []string{"PARLEY_DATABASE_URL=" + url, "PARLEY_JWT_SECRET=" + secret, "PARLEY_HEARTBEAT=-1s"}, "PARLEY_HEARTBEAT"},
		{"ErrTLSCertWithoutKey", []string{"PARLEY_DATABASE_URL=" + url, "PARLEY_JWT_SECRET=" + secret, "PARLEY_TLS_CERT_FILE=" + notPEM}, "PARLEY_TLS_KEY_FILE"},
		{"ErrTLSMissingFiles", []string{"PARLEY_DATABASE_URL=" + url, "PARLEY_JWT_SECRET=" + secret,
			"PARLEY_TLS_CERT_FILE=" + filepath.Join(dir, "missing.crt"), "PARLEY_TLS_KEY_FILE=" + filepath.Join(dir, "missing.key")}, "missing.crt"},
		{"ErrTLSNotPEM", []string{"PARLEY_DATABASE_URL=" + url, "PARLEY_JWT_SECRET=" + secret,
			"PARLEY_TLS_CERT_FILE=" + notPEM, "PARLEY_TLS_KEY_FILE=" + notPEM}, "PARLEY_TLS_CERT_FILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := MustRun(t, "", env(append(tt.env, "PARLEY_ADDR=127.0.0.1:0")...), "serve")
			if r.Code != 1 || !strings.Contains(r.Stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q: want exit 1 naming %s", r.Code, r.Stderr, tt.want)
			}
			if s := MustSchema(t, url); len(s.Tables) != 0 || s.Version != 0 {
				t.Fatalf("a refused serve changed the database: %+v", s)
			}
		})
	}
}

// schemaUpToDate is serve's log line after migrating.
type schemaUpToDate struct {
	Msg     string `json:"msg"`
	Version int    `json:"version"`
	Applied *int   `json:"applied"`
}

// MustApplied returns how many migrations a replica applied at start, from
// its log.
func MustApplied(tb testing.TB, log string) int {
	tb.Helper()
	for _, line := range strings.Split(log, "\n") {
		var l schemaUpToDate
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "database schema up to date" && l.Applied != nil {
			return *l.Applied
		}
	}
	tb.Fatalf("no \"database schema up to date\" line in the log:\n%s", log)
	return 0
}

// TestTwoReplicasStartTogether starts two serve processes at the same
// moment on one empty database: both come up ready and serve, and the
// migrations are applied once.
func TestTwoReplicasStartTogether(t *testing.T) {
	ms := MustMigrations(t)
	url := pgtest.NewEmptyDB(t)
	secret := e2e.Secret(t)
	applied := make([]int, 2)
	t.Run("Start", func(t *testing.T) {
		for i := range applied {
			t.Run(fmt.Sprintf("Replica%d", i), func(t *testing.T) {
				t.Parallel()
				cmd := exec.Command(e2e.Binary(), "serve")
				cmd.Env = env("PARLEY_DATABASE_URL="+url, "PARLEY_JWT_SECRET="+secret, "PARLEY_ADDR=127.0.0.1:0")
				r := e2e.MustStartCmd(t, cmd)
				applied[i] = MustApplied(t, r.Log())
				e2e.MustRegister(t, r.URL, fmt.Sprintf("user%d", i))
			})
		}
	})
	if t.Failed() {
		return
	}
	if applied[0]+applied[1] != len(ms) {
		t.Fatalf("replicas applied %v migrations, want %d in all", applied, len(ms))
	}
	if got, want := MustSchema(t, url), schemaAt(ms, len(ms)); !slices.Equal(got.Tables, want.Tables) || got.Version != want.Version {
		t.Fatalf("schema %+v, want %+v", got, want)
	}
	conn := e2e.MustConnect(t, url)
	var users, versions, distinct int
	err := conn.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM users),
		(SELECT count(*) FROM goose_db_version WHERE version_id > 0),
		(SELECT count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0)`).Scan(&users, &versions, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if users != 2 || versions != len(ms) || distinct != len(ms) {
		t.Fatalf("%d users, %d migration records (%d distinct); want 2 and %d", users, versions, distinct, len(ms))
	}
}

// MustTraversableTempDir is a test temp dir that the postgres user, which
// runs the private cluster when tests run as root, can reach.
func MustTraversableTempDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// postmaster is the running server of a private cluster, from its pid file.
type postmaster struct {
	pid     int
	sockDir string
}

// readPostmaster reads the postmaster.pid of the cluster in pgdata; ok is
// false when there is none.
func readPostmaster(pgdata string) (p postmaster, ok bool) {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return p, false
	}
	lines := strings.Split(string(b), "\n")
	p.pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	if len(lines) > 4 {
		p.sockDir = strings.TrimSpace(lines[4])
	}
	return p, p.pid > 0
}

// alive reports whether pid runs (a zombie nobody reaped does not count).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if i := bytes.LastIndexByte(stat, ')'); err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// exited waits up to d for pid to exit and reports whether it did.
func exited(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// MustStopPostgresAtCleanup makes sure no Postgres server of the cluster in
// pgdata outlives the test, even when parley was killed before it could
// stop it. Register it before starting parley, so it runs after parley is
// killed.
func MustStopPostgresAtCleanup(tb testing.TB, pgdata string) {
	tb.Helper()
	tb.Cleanup(func() {
		p, ok := readPostmaster(pgdata)
		if !ok || !alive(p.pid) {
			return
		}
		tb.Logf("postgres (pid %d) still running at the end of the test: stopping it", p.pid)
		_ = syscall.Kill(p.pid, syscall.SIGQUIT) // immediate shutdown
		if !exited(p.pid, 30*time.Second) {
			tb.Errorf("postgres (pid %d) did not stop", p.pid)
		}
		if strings.HasPrefix(p.sockDir, "/tmp/parley-") {
			_ = os.RemoveAll(p.sockDir)
		}
	})
}

// MustTerminate sends SIGTERM and checks the replica exits 0 within the
// contract's 20 s and has stopped the Postgres server it ran.
func MustTerminate(tb testing.TB, r *e2e.Replica, pgdata string) {
	tb.Helper()
	pm, ok := readPostmaster(pgdata)
	if !ok || !alive(pm.pid) {
		tb.Fatalf("no private Postgres running in %s", pgdata)
	}
	if err := r.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-r.Exited():
	case <-time.After(20 * time.Second):
		tb.Fatalf("parley still running 20s after SIGTERM:\n%s", r.Log())
	}
	if err := r.ExitErr(); err != nil {
		tb.Fatalf("parley exited with %v after SIGTERM, want 0:\n%s", err, r.Log())
	}
	if _, ok := readPostmaster(pgdata); ok {
		tb.Fatalf("postmaster.pid left in %s: Postgres was not stopped", pgdata)
	}
	// The server unlinks its pid file just before it exits.
	if !exited(pm.pid, 5*time.Second) {
		tb.Fatalf("Postgres (pid %d) still runs after parley exited", pm.pid)
	}
}

// TestServeWithoutConfiguration runs parley the way `make run` does: `serve`
// with no settings at all (but a free port), in a fresh directory. It starts
// its private Postgres cluster and keeps it, with a generated JWT secret,
// in ./.parley; a session survives a restart; migrate finds the same
// cluster; SIGTERM exits 0 and stops Postgres.
func TestServeWithoutConfiguration(t *testing.T) {
	dir := MustTraversableTempDir(t)
	dataDir := filepath.Join(dir, ".parley")
	pgdata := filepath.Join(dataDir, "pg", "data")
	MustStopPostgresAtCleanup(t, pgdata)
	start := func() *e2e.Replica {
		t.Helper()
		cmd := exec.Command(e2e.Binary(), "serve")
		cmd.Dir = dir
		cmd.Env = env("PARLEY_ADDR=127.0.0.1:0")
		return e2e.MustStartCmd(t, cmd)
	}

	first := start()
	secret, err := os.ReadFile(filepath.Join(dataDir, "jwt-secret"))
	if err != nil {
		t.Fatalf("no generated JWT secret in the data dir: %v", err)
	}
	if len(strings.TrimSpace(string(secret))) < 32 {
		t.Fatalf("generated JWT secret is %d bytes, want at least 32", len(strings.TrimSpace(string(secret))))
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "jwt-secret")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("jwt-secret: %v, mode %v; want readable by its owner only", err, fi.Mode())
	}
	alice := e2e.MustRegister(t, first.URL, "alice")
	if resp := alice.Do(t, http.MethodGet, "/v1/me", nil); resp.Status != http.StatusOK {
		t.Fatalf("/v1/me: %d %s", resp.Status, resp.Body)
	}
	MustTerminate(t, first, pgdata)

	// migrate uses the same private cluster, and stops it again.
	status := MustSucceed(t, dir, env(), "migrate", "status")
	for v, state := range statusStates(t, status.Stdout) {
		if state != "applied" {
			t.Fatalf("migration %d is %s in the private cluster:\n%s", v, state, status.Stdout)
		}
	}
	if len(statusStates(t, status.Stdout)) != len(MustMigrations(t)) {
		t.Fatalf("status lists %d migrations, want %d:\n%s", len(statusStates(t, status.Stdout)), len(MustMigrations(t)), status.Stdout)
	}
	if _, ok := readPostmaster(pgdata); ok {
		t.Fatal("migrate left the private Postgres running")
	}

	second := start()
	again := alice.As(second.URL)
	if resp := again.Do(t, http.MethodGet, "/v1/me", nil); resp.Status != http.StatusOK {
		t.Fatalf("the access token from before the restart: /v1/me %d %s", resp.Status, resp.Body)
	}
	resp := again.Do(t, http.MethodPost, "/v1/auth/refresh", map[string]string{"refresh_token": alice.Session.RefreshToken})
	if resp.Status != http.StatusOK {
		t.Fatalf("the refresh token from before the restart: %d %s", resp.Status, resp.Body)
	}
	MustTerminate(t, second, pgdata)
}
