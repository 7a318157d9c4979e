package localpg

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// helperEnv makes the test binary act as a process that starts a throwaway
// cluster and dies without stopping it (see TestMain).
const helperEnv = "LOCALPG_TEST_DIE_WITH_CLUSTER_IN"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		c, err := Start(context.Background(), dir, nil, Throwaway())
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(1)
		}
		os.Stdout.WriteString(c.root + "\n")
		os.Exit(0) // without Stop
	}
	os.Exit(m.Run())
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ tb testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// MustStart starts a cluster in dataDir and removes its files at the end of
// the test, including those kept outside dataDir.
func MustStart(tb testing.TB, dataDir string, opts ...Option) *Cluster {
	tb.Helper()
	start := time.Now()
	c, err := Start(tb.Context(), dataDir, testLogger(tb), opts...)
	if err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Logf("started in %v (owned=%v)", time.Since(start).Round(time.Millisecond), c.owned)
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Errorf("stop: %v", err)
		}
		if c.owned {
			_ = os.RemoveAll(c.root)
		}
	})
	return c
}

// MustSelectOne connects to the cluster's postgres database and runs a query.
func MustSelectOne(tb testing.TB, c *Cluster) {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), c.URL("postgres"))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(tb.Context(), "select 1").Scan(&one); err != nil || one != 1 {
		tb.Fatalf("select 1: %d, %v", one, err)
	}
}

// reachableTempDir returns a fresh directory that the postgres user can
// traverse even when tests run as root (t.TempDir's directories are 0700).
func reachableTempDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func TestStart(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		dir := reachableTempDir(t)
		c := MustStart(t, dir, Throwaway())
		MustSelectOne(t, c)
		if want := filepath.Join(dir, "pg"); c.root != want {
			t.Errorf("cluster in %s, want %s", c.root, want)
		}
		if err := c.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("throwaway data dir left behind: %v", err)
		}
		if _, err := os.Stat(c.sockDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket dir left behind: %v", err)
		}
	})
	t.Run("TestTempDir", func(t *testing.T) {
		// t.TempDir is 0700: as root this takes the temp dir fallback.
		t.Parallel()
		dir := t.TempDir()
		c := MustStart(t, filepath.Join(dir, "data"), Throwaway())
		MustSelectOne(t, c)
		if os.Geteuid() == 0 && c.root == filepath.Join(dir, "data", "pg") {
			t.Errorf("cluster in unreachable %s", c.root)
		}
		if err := c.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if _, err := os.Stat(c.root); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("throwaway cluster dir left behind: %v", err)
		}
	})
}

func TestStartRestart(t *testing.T) {
	t.Parallel()
	dir := reachableTempDir(t)
	c := MustStart(t, dir)
	MustSelectOne(t, c)
	if err := c.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := pgx.Connect(t.Context(), c.URL("postgres")); err == nil {
		t.Fatal("connected after stop")
	}

	c = MustStart(t, dir)
	if !c.owned {
		t.Error("restarted cluster not owned")
	}
	MustSelectOne(t, c)
}

func TestStartReuse(t *testing.T) {
	t.Parallel()
	dir := reachableTempDir(t)
	first := MustStart(t, dir)
	second := MustStart(t, dir)
	if second.owned {
		t.Fatal("second Start started another server")
	}
	if first.URL("x") != second.URL("x") {
		t.Errorf("URLs differ: %s, %s", first.URL("x"), second.URL("x"))
	}
	if err := second.Stop(); err != nil {
		t.Fatalf("stop second: %v", err)
	}
	MustSelectOne(t, first) // still running
}

func TestStartConcurrent(t *testing.T) {
	t.Parallel()
	dir := reachableTempDir(t)
	errs := make(chan error, 3)
	clusters := make(chan *Cluster, 3)
	for range 3 {
		go func() {
			c, err := Start(t.Context(), dir, testLogger(t))
			errs <- err
			clusters <- c
		}()
	}
	var owners int
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("start: %v", err)
		}
		c := <-clusters
		if c.owned {
			owners++
			t.Cleanup(func() {
				if err := c.Stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			})
		}
		MustSelectOne(t, c)
	}
	if owners != 1 {
		t.Errorf("%d Starts started the server, want 1", owners)
	}
}

func TestStartStalePidFile(t *testing.T) {
	t.Parallel()
	for name, pid := range map[string]int{
		"DeadProcess":  deadPid(t),
		"OtherProcess": os.Getpid(), // alive, but not the cluster's postmaster
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := reachableTempDir(t)
			c := MustStart(t, dir)
			if err := c.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			// What a server killed with SIGKILL leaves, after its pid has
			// perhaps gone to another process.
			pidFile := strconv.Itoa(pid) + "\n" + c.pgdata + "\n1700000000\n5432\n" + c.sockDir + "\n\n  5432001         0\nready   \n"
			if err := os.WriteFile(filepath.Join(c.pgdata, "postmaster.pid"), []byte(pidFile), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(c.sockDir, 0o700); err != nil { // Stop removed it
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(c.sockDir, ".s.PGSQL.5432.lock"), []byte(pidFile), 0o600); err != nil {
				t.Fatal(err)
			}
			c = MustStart(t, dir)
			if !c.owned {
				t.Error("stale server reused")
			}
			MustSelectOne(t, c)
		})
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(tb testing.TB) int {
	tb.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		tb.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestThrowawayProcessDeath checks that a throwaway cluster goes away when
// its process exits without Stop, as a test binary does when it times out.
func TestThrowawayProcessDeath(t *testing.T) {
	t.Parallel()
	dir := reachableTempDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = tWriter{t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	root := string(out[:len(out)-1])
	if _, err := os.Stat(filepath.Join(root, "data", "postmaster.pid")); err != nil {
		t.Fatalf("helper's cluster not running: %v", err)
	}
	// The watchdog cleans up asynchronously: poll for its result.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("data dir %s still there: %v", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestURL(t *testing.T) {
	c := &Cluster{sockDir: "/tmp/parley-0123abcd", port: 5432}
	got := c.URL("parley")
	if want := "postgres://postgres@/parley?host=/tmp/parley-0123abcd&port=5432&sslmode=disable"; got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
	cfg, err := pgx.ParseConfig(got)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if cfg.Host != c.sockDir || cfg.Port != 5432 || cfg.Database != "parley" || cfg.User != "postgres" || cfg.TLSConfig != nil {
		t.Errorf("parsed %+v", cfg)
	}
}

func TestFindBinDirs(t *testing.T) {
	t.Parallel()
	fakeBin := func(tb testing.TB, dir string) {
		tb.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
				tb.Fatal(err)
			}
		}
	}
	t.Run("ErrNotInstalled", func(t *testing.T) {
		t.Parallel()
		empty := t.TempDir()
		if dirs := findBinDirs(empty, filepath.Join(empty, "*", "bin")); len(dirs) != 0 {
			t.Errorf("found %v", dirs)
		}
	})
	t.Run("PathFirstThenNewest", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		for _, v := range []string{"9.6", "15", "13"} {
			fakeBin(t, filepath.Join(root, "lib", v, "bin"))
		}
		// A PATH directory with symlinks, as in /usr/local/bin.
		pathDir := filepath.Join(root, "path")
		if err := os.Mkdir(pathDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(root, "lib", "13", "bin", "initdb"), filepath.Join(pathDir, "initdb")); err != nil {
			t.Fatal(err)
		}
		got := findBinDirs(filepath.Join(root, "nothing")+string(filepath.ListSeparator)+pathDir, filepath.Join(root, "lib", "*", "bin"))
		want := []string{"13", "15", "9.6"}
		if len(got) != len(want) {
			t.Fatalf("found %v, want versions %v", got, want)
		}
		for i, v := range want {
			if got[i] != filepath.Join(root, "lib", v, "bin") {
				t.Errorf("dirs[%d] = %s, want version %s", i, got[i], v)
			}
		}
	})
}
