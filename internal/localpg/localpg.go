// Package localpg owns the private Postgres cluster used by default and by
// tests: a cluster of the installed Postgres binaries that keeps its files
// under Parley's data dir and listens only on a Unix socket in a private
// directory, so it never collides with a system server on port 5432 and needs
// no password.
//
// Trust authentication is safe here only because the socket directory is
// private (mode 0700): whoever can reach the socket is the user running Parley
// (or root).
package localpg

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-chat/parley/internal/logs"
)

// ErrNotInstalled is returned by Start when no Postgres server binaries are
// found.
var ErrNotInstalled = errors.New("no Postgres server binaries (initdb, pg_ctl, postgres) found on PATH or in /usr/lib/postgresql/*/bin: " +
	"install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) " +
	"or set PARLEY_DATABASE_URL to use an existing server")

const (
	port           = 5432
	maxConnections = 200
	// pgCtlTimeout bounds pg_ctl's own wait for start and stop, in seconds.
	pgCtlTimeout = 60
	// maxSocketPath is the limit on a Unix socket's path (sun_path minus NUL).
	maxSocketPath = 107
)

// Option adjusts how Start runs a cluster.
type Option func(*options)

type options struct {
	throwaway bool
}

// Throwaway makes a cluster for tests and one-off runs: it runs without
// fsync, and when Stop is called, or when this process exits for any reason
// (even SIGKILL or a test timeout) without calling it, the server is stopped
// and dataDir is deleted. Pass it only with a dataDir made for the purpose.
func Throwaway() Option {
	return func(o *options) { o.throwaway = true }
}

// Cluster is a running private Postgres cluster.
type Cluster struct {
	logger  *slog.Logger
	bin     string              // directory holding initdb, pg_ctl and postgres
	cred    *syscall.Credential // the postgres user when running as root, else nil
	root    string              // directory holding the data directory and the server log
	pgdata  string              // the cluster's data directory
	sockDir string              // directory of the server's Unix socket
	port    int

	// owned reports whether this Cluster started the server, and so whether
	// Stop stops it; a server found running is someone else's to stop.
	owned     bool
	throwaway bool
	remove    []string // directories a throwaway cluster deletes once stopped

	watchdog     *exec.Cmd
	watchdogPipe *os.File // its stdin's write end; closing it (or dying) fires the watchdog

	stopOnce sync.Once
	stopErr  error
}

// Start runs the private cluster kept under dataDir, creating dataDir and
// initialising the cluster (in dataDir/pg) if needed. If the cluster is
// already running, for example for another Parley process using the same
// dataDir, Start reuses it and Stop leaves it running.
//
// As root, initdb and pg_ctl run as the postgres system user, since initdb
// refuses root. If that user cannot reach dataDir (a checkout under a 0700
// /root, say), the cluster is kept instead in a postgres-owned directory of
// the system temp dir named from a hash of dataDir.
func Start(ctx context.Context, dataDir string, logger *slog.Logger, opts ...Option) (*Cluster, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data dir: %w", err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("resolve data dir: %w", err)
	}
	sum := sha256.Sum256([]byte(abs))
	hash := hex.EncodeToString(sum[:])

	c := &Cluster{
		logger:    logger,
		root:      filepath.Join(abs, "pg"),
		sockDir:   filepath.Join("/tmp", "parley-"+hash[:8]),
		port:      port,
		throwaway: o.throwaway,
	}
	if len(c.sockDir)+len("/.s.PGSQL.")+len(strconv.Itoa(port)) > maxSocketPath {
		return nil, fmt.Errorf("socket dir %s is too long for a Unix socket path", c.sockDir)
	}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresCredential(); err != nil {
			return nil, err
		}
		if blocked := untraversable(c.cred, abs); blocked != "" {
			c.root = filepath.Join(os.TempDir(), "parley-pg-"+hash[:16])
			logger.Info("the postgres user cannot reach the data dir: keeping the cluster in the temp dir instead",
				"data_dir", abs, "blocked_at", blocked, "cluster_dir", c.root)
			if blocked := untraversable(c.cred, filepath.Dir(c.root)); blocked != "" {
				return nil, fmt.Errorf("the postgres user cannot reach %s (blocked at %s): use a data dir it can traverse", c.root, blocked)
			}
		}
	}
	c.pgdata = filepath.Join(c.root, "data")

	// Serialize Parley processes starting the same cluster, so that only one
	// runs initdb or pg_ctl start and the others find it running.
	unlock, err := lockFile(ctx, filepath.Join(abs, ".localpg.lock"))
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	defer unlock()

	if err := c.ensurePrivateDir(c.root); err != nil {
		return nil, err
	}
	if err := c.ensurePrivateDir(c.sockDir); err != nil {
		return nil, err
	}
	if err := c.chooseBinaries(ctx); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.startOrReuse(ctx); err != nil {
		return nil, err
	}
	if c.owned && c.throwaway {
		c.remove = []string{abs, c.sockDir}
		if c.root != filepath.Join(abs, "pg") {
			c.remove = append(c.remove, c.root)
		}
		if err := c.startWatchdog(); err != nil {
			return nil, errors.Join(err, c.Stop())
		}
	}
	return c, nil
}

// URL returns the connection URL of database dbname, e.g.
// postgres://postgres@/parley?host=/tmp/parley-0123abcd&port=5432&sslmode=disable.
// The port is explicit so that a PGPORT in the environment does not redirect
// clients.
func (c *Cluster) URL(dbname string) string {
	host := strings.ReplaceAll(url.QueryEscape(c.sockDir), "%2F", "/")
	return "postgres://postgres@/" + url.PathEscape(dbname) +
		"?host=" + host + "&port=" + strconv.Itoa(c.port) + "&sslmode=disable"
}

// Stop stops the server if this Cluster started it (a server that was
// already running is left alone) and, for a Throwaway cluster, deletes its
// files. Calling Stop again returns the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Cluster) stop() error {
	if !c.owned {
		return nil
	}
	if c.watchdog != nil {
		// Stop the watchdog first: it must not signal the server's pid once
		// the server is gone and the pid may belong to someone else.
		_ = c.watchdog.Process.Kill()
		_ = c.watchdog.Wait()
		_ = c.watchdogPipe.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*pgCtlTimeout*time.Second)
	defer cancel()
	_, err := c.run(ctx, "pg_ctl", "stop", "-D", c.pgdata, "-m", "fast", "-w", "-t", strconv.Itoa(pgCtlTimeout))
	if err != nil && c.throwaway {
		c.logger.Warn("fast shutdown failed, trying immediate", "err", err)
		_, err = c.run(ctx, "pg_ctl", "stop", "-D", c.pgdata, "-m", "immediate", "-w", "-t", strconv.Itoa(pgCtlTimeout))
	}
	if err != nil {
		return fmt.Errorf("stop postgres: %w", err)
	}
	c.logger.Info("postgres stopped", "data_dir", c.pgdata)
	if !c.throwaway {
		_ = os.Remove(c.sockDir) // only if empty; Start makes it again
		return nil
	}
	var errs []error
	for _, dir := range c.remove {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster files: %w", err))
		}
	}
	return errors.Join(errs...)
}

// chooseBinaries picks the Postgres binaries: those matching the version of
// an existing cluster, else the first found.
func (c *Cluster) chooseBinaries(ctx context.Context) error {
	dirs := findBinDirs(os.Getenv("PATH"), "/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		return ErrNotInstalled
	}
	want, err := os.ReadFile(filepath.Join(c.pgdata, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		c.bin = dirs[0]
		return nil
	}
	if err != nil {
		return fmt.Errorf("read cluster version: %w", err)
	}
	var found []string
	for _, dir := range dirs {
		v, err := binVersion(ctx, dir)
		if err != nil {
			return err
		}
		if v == strings.TrimSpace(string(want)) {
			c.bin = dir
			return nil
		}
		found = append(found, v+" in "+dir)
	}
	return fmt.Errorf("cluster %s was initialised by Postgres %s but only %s is installed: install Postgres %[2]s or move the cluster away",
		c.pgdata, strings.TrimSpace(string(want)), strings.Join(found, ", "))
}

// findBinDirs lists the directories holding initdb, pg_ctl and postgres:
// the one of the first initdb on the search path first, then those matching
// versionGlob (Debian's /usr/lib/postgresql/*/bin), newest first.
func findBinDirs(searchPath, versionGlob string) []string {
	var dirs []string
	add := func(dir string) {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
				return
			}
		}
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	// pg_ctl finds postgres next to itself, so follow symlinks such as
	// /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
	for _, dir := range filepath.SplitList(searchPath) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p, err := filepath.EvalSymlinks(filepath.Join(dir, "initdb"))
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			add(filepath.Dir(p))
			break
		}
	}
	versioned, _ := filepath.Glob(versionGlob)
	slices.SortFunc(versioned, func(a, b string) int {
		return versionKey(filepath.Base(filepath.Dir(b))) - versionKey(filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range versioned {
		add(dir)
	}
	return dirs
}

// versionKey orders Debian's version directories ("9.6", "15").
func versionKey(v string) int {
	major, minor, _ := strings.Cut(v, ".")
	a, _ := strconv.Atoi(major)
	b, _ := strconv.Atoi(minor)
	return a*100 + b
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// binVersion returns the major version of the binaries in dir in the form of
// a PG_VERSION file ("15", or "9.6" before Postgres 10).
func binVersion(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "pg_ctl"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w", filepath.Join(dir, "pg_ctl"), err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("parse version of %s: %q", dir, out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 10 && m[2] != nil {
		return string(m[1]) + "." + string(m[2]), nil
	}
	return string(m[1]), nil
}

// postgresCredential returns the postgres system user, which runs the
// cluster when we are root.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("find the postgres user, which runs the cluster when Parley runs as root (initdb refuses root): %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of postgres: %w", err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred, nil
}

// untraversable returns the first of dir and its parents that cred cannot
// search (judging by mode bits), or "" if it can reach dir.
func untraversable(cred *syscall.Credential, dir string) string {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return p
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return ""
		}
		perm := fi.Mode().Perm()
		var can bool
		switch {
		case st.Uid == cred.Uid:
			can = perm&0o100 != 0
		case st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid):
			can = perm&0o010 != 0
		default:
			can = perm&0o001 != 0
		}
		if !can {
			return p
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

// ensurePrivateDir makes dir a 0700 directory owned by the user running the
// cluster. An existing dir must be that user's (or root's, when we are root,
// as after a crash before chown): anything else in a shared temp dir could be
// someone else's trap.
func (c *Cluster) ensurePrivateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	uid := uint32(os.Geteuid())
	if c.cred != nil {
		uid = c.cred.Uid
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != uid {
		if c.cred == nil || st.Uid != 0 {
			return fmt.Errorf("%s belongs to uid %d, not %d: remove it", dir, st.Uid, uid)
		}
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres user: %w", dir, err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("make %s private: %w", dir, err)
	}
	return nil
}

// initdb creates the cluster unless it exists. It initialises into a
// temporary directory renamed at the end, so an interrupted initdb never
// leaves a half-made cluster behind.
func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.pgdata, "PG_VERSION")); err == nil {
		return nil
	}
	tmp := c.pgdata + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove interrupted initdb: %w", err)
	}
	if _, err := os.Stat(c.pgdata); err == nil {
		return fmt.Errorf("%s exists but holds no cluster (no PG_VERSION): remove it", c.pgdata)
	}
	start := time.Now()
	args := []string{"-D", tmp, "--auth=trust", "-U", "postgres", "--encoding=UTF8"}
	if c.throwaway {
		args = append(args, "--no-sync")
	}
	// C.UTF-8 gives Unicode-aware lower() and upper() with byte-order
	// sorting; systems without it get plain C.
	out, err := c.run(ctx, "initdb", append(args, "--locale=C.UTF-8")...)
	if err != nil && bytes.Contains(bytes.ToLower(out), []byte("locale")) {
		_ = os.RemoveAll(tmp)
		c.logger.Info("locale C.UTF-8 unavailable, using C", "output", string(out))
		_, err = c.run(ctx, "initdb", append(args, "--locale=C")...)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("initialise postgres cluster: %w", err)
	}
	if err := os.Rename(tmp, c.pgdata); err != nil {
		return fmt.Errorf("move new cluster in place: %w", err)
	}
	c.logger.Info("postgres cluster initialised", "data_dir", c.pgdata, "bin", c.bin, logs.Millis("duration", time.Since(start)))
	return nil
}

// startOrReuse starts the server, or reuses it if it is already running.
func (c *Cluster) startOrReuse(ctx context.Context) error {
	deadline := time.Now().Add(2 * pgCtlTimeout * time.Second)
	for {
		pf, state, err := c.inspect()
		if err != nil {
			return err
		}
		switch state {
		case serverReady:
			c.sockDir, c.port = pf.sockDir, pf.port
			c.logger.Info("reusing running postgres", "data_dir", c.pgdata, "pid", pf.pid)
			return nil
		case serverStale:
			c.logger.Warn("removing stale postmaster.pid", "data_dir", c.pgdata, "pid", pf.pid)
			if err := os.Remove(filepath.Join(c.pgdata, "postmaster.pid")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove stale postmaster.pid: %w", err)
			}
			fallthrough
		case serverStopped:
			return c.start(ctx)
		}
		// Starting or stopping: someone else's pg_ctl is at work.
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres (pid %d) in %s did not become ready: see %s", pf.pid, c.pgdata, c.logFile())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for running postgres: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) start(ctx context.Context) error {
	c.removeStaleSocket()
	start := time.Now()
	serverOpts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c unix_socket_permissions=0700 -c port=%d -c max_connections=%d",
		c.sockDir, c.port, maxConnections)
	if c.throwaway {
		serverOpts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	_, err := c.run(ctx, "pg_ctl", "start", "-D", c.pgdata, "-l", c.logFile(), "-w", "-t", strconv.Itoa(pgCtlTimeout), "-o", serverOpts)
	if err != nil {
		return fmt.Errorf("start postgres: %w%s", err, c.logTail())
	}
	c.owned = true
	c.logger.Info("postgres started", "data_dir", c.pgdata, "socket_dir", c.sockDir, "log", c.logFile(), logs.Millis("duration", time.Since(start)))
	return nil
}

func (c *Cluster) logFile() string { return filepath.Join(c.root, "server.log") }

// logTail returns the end of the server log, which says why a start failed.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-10):]
	return "\nserver log " + c.logFile() + ":\n" + strings.Join(lines, "\n")
}

type serverState int

const (
	serverStopped serverState = iota
	serverStale               // postmaster.pid names a process that is not this cluster's server
	serverBusy                // starting or stopping
	serverReady
)

type pidFile struct {
	pid     int
	port    int
	sockDir string
	status  string
}

// inspect reads postmaster.pid to tell whether the cluster's server runs.
func (c *Cluster) inspect() (pidFile, serverState, error) {
	var pf pidFile
	f, err := os.Open(filepath.Join(c.pgdata, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return pf, serverStopped, nil
	}
	if err != nil {
		return pf, 0, fmt.Errorf("read postmaster.pid: %w", err)
	}
	defer f.Close()
	// Lines: pid, data dir, start time, port, socket dir, listen address,
	// shared memory key, status (Postgres 10 and later).
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) > 0 {
		pf.pid, _ = strconv.Atoi(lines[0])
	}
	if len(lines) > 4 {
		pf.port, _ = strconv.Atoi(lines[3])
		pf.sockDir = lines[4]
	}
	if len(lines) > 7 {
		pf.status = lines[7]
	}
	if pf.pid <= 0 {
		// Being written by a starting server (or garbage, which the server
		// itself replaces once we have waited).
		return pf, serverBusy, nil
	}
	if !c.isServer(pf.pid) {
		return pf, serverStale, nil
	}
	if pf.status != "ready" || pf.port == 0 || pf.sockDir == "" {
		return pf, serverBusy, nil
	}
	conn, err := net.DialTimeout("unix", filepath.Join(pf.sockDir, ".s.PGSQL."+strconv.Itoa(pf.port)), time.Second)
	if err != nil {
		return pf, serverBusy, nil
	}
	_ = conn.Close()
	return pf, serverReady, nil
}

// isServer reports whether pid is alive and, as far as we can tell, the
// postmaster of this cluster rather than a process that got its pid after a
// reboot or a kill.
func (c *Cluster) isServer(pid int) bool {
	alive, postgres, cwd := inspectProcess(pid)
	if !alive || !postgres {
		return false
	}
	if cwd == "" {
		return true
	}
	// The postmaster's working directory is its data directory.
	want, err := filepath.EvalSymlinks(c.pgdata)
	if err != nil {
		want = c.pgdata
	}
	return cwd == want
}

// inspectProcess tells whether pid is alive, whether it looks like a
// Postgres process (true when we cannot tell), and its working directory
// ("" when we cannot tell).
func inspectProcess(pid int) (alive, postgres bool, cwd string) {
	if pid <= 0 {
		return false, false, ""
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false, false, ""
	}
	if runtime.GOOS != "linux" {
		return true, true, ""
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if stat, err := os.ReadFile(proc + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false, false, "" // a zombie nobody reaped
		}
	}
	postgres = true
	if comm, err := os.ReadFile(proc + "/comm"); err == nil {
		name := strings.TrimSpace(string(comm))
		postgres = strings.Contains(name, "postgres") || strings.Contains(name, "postmaster")
	}
	cwd, _ = os.Readlink(proc + "/cwd")
	return true, postgres, cwd
}

// removeStaleSocket removes the socket and socket lock file of a server
// that is gone: Postgres refuses to start if the lock file names a live
// process, as it may after a reboot. A live Postgres process's files are
// left alone.
func (c *Cluster) removeStaleSocket() {
	lock := filepath.Join(c.sockDir, ".s.PGSQL."+strconv.Itoa(c.port)+".lock")
	b, err := os.ReadFile(lock)
	if err != nil {
		return
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	if alive, postgres, _ := inspectProcess(pid); alive && postgres {
		return
	}
	c.logger.Warn("removing stale socket lock file", "path", lock, "pid", pid)
	_ = os.Remove(lock)
	_ = os.Remove(strings.TrimSuffix(lock, ".lock"))
}

// run runs one of the Postgres binaries, as the postgres user when we are
// root, and returns its combined output.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	// The postgres user may not be able to reach our working directory.
	cmd.Dir = c.root
	cmd.Env = childEnv()
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, args[0], err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// childEnv is our environment without the PG* variables, which would
// otherwise change the server's port or the tools' defaults.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// watchdogScript waits for EOF on stdin, which comes when the process
// holding the pipe's other end exits, however it exits; then it stops the
// server (SIGINT is a fast shutdown) and deletes the cluster's files.
const watchdogScript = `read -r _ || :
kill -INT "$1" 2>/dev/null || :
i=0
while kill -0 "$1" 2>/dev/null && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i+1)); done
shift
rm -rf -- "$@"
`

// startWatchdog starts a shell, in its own process group so a Ctrl-C meant
// for us does not kill it, that cleans up the throwaway cluster if this
// process dies without calling Stop.
func (c *Cluster) startWatchdog() error {
	pf, _, err := c.inspect()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	defer r.Close()
	args := append([]string{"-c", watchdogScript, "localpg-watchdog", strconv.Itoa(pf.pid)}, c.remove...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		return fmt.Errorf("start watchdog: %w", err)
	}
	c.watchdog, c.watchdogPipe = cmd, w
	return nil
}

// lockFile takes an exclusive flock on path, waiting for it as long as ctx
// allows.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
