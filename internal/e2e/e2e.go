// Package e2e runs Parley as users meet it: real `parley serve` processes
// built from cmd/parley, on a real Postgres database per test, spoken to over
// HTTP and SSE. The test packages below it use these helpers.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/localpg"
	"github.com/parley-chat/parley/internal/pgtest"
)

// binary is the parley binary built for this test process by Main.
var binary string

// Main builds cmd/parley, then runs the tests with pgtest's database server.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "parley-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "parley")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	build := exec.Command("go", "build", "-race", "-o", binary, "./cmd/parley")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build parley:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Binary is the path of the parley binary under test.
func Binary() string { return binary }

var plain struct {
	once sync.Once
	path string
	err  error
}

// PlainBinary builds parley without the race detector (once per test
// process) and returns its path: for tests of resource bounds, which the
// race detector's own memory would swamp.
func PlainBinary(tb testing.TB) string {
	tb.Helper()
	plain.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		plain.path = binary + "-plain"
		build := exec.Command("go", "build", "-o", plain.path, "./cmd/parley")
		build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		out, err := build.CombinedOutput()
		if err != nil {
			plain.err = fmt.Errorf("build parley without -race: %v\n%s", err, out)
		}
	})
	if plain.err != nil {
		tb.Fatal(plain.err)
	}
	return plain.path
}

// Secret returns a random JWT secret for a test's replicas.
func Secret(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// RaisedLimits lift the contract's limits far above what tests do (fan-out
// tests post thousands of messages, stream tests open many streams), while
// keeping every limiter at work. Replicas start with them unless a test
// sets the variables itself (later settings win), as the limit tests do
// with DefaultLimits.
var RaisedLimits = []string{
	"PARLEY_POST_RATE=1000000",
	"PARLEY_POST_BURST=1000000",
	"PARLEY_LOGIN_FAILURES=1000000",
	"PARLEY_LOGIN_FAILURES_PER_USER=1000000",
	"PARLEY_STREAMS_PER_USER=100000",
}

// DefaultLimits are the contract's limits, for tests of the limits.
var DefaultLimits = []string{
	"PARLEY_POST_RATE=10",
	"PARLEY_POST_BURST=20",
	"PARLEY_LOGIN_FAILURES=10",
	"PARLEY_LOGIN_FAILURES_PER_USER=100",
	"PARLEY_LOGIN_WINDOW=10m",
	"PARLEY_STREAMS_PER_USER=32",
	"PARLEY_MAX_STREAMS=10000",
}

// Cluster is a test's database and the replicas serving it.
type Cluster struct {
	DatabaseURL string
	Secret      string
	Env         []string
}

// NewCluster gives a test a fresh database and secret; env holds extra
// PARLEY_* settings for every replica.
func NewCluster(tb testing.TB, env ...string) *Cluster {
	tb.Helper()
	return &Cluster{DatabaseURL: pgtest.NewDB(tb), Secret: Secret(tb), Env: env}
}

// Replica is one running `parley serve` process.
type Replica struct {
	URL string
	// HTTP is the client that reaches the replica.
	HTTP *http.Client
	cmd  *exec.Cmd
	log  *syncBuffer

	waitOnce sync.Once
	waitErr  error
	exited   chan struct{}
}

// MustStart starts a replica on the cluster's database and waits until it
// is ready. It is killed at the end of the test.
func (c *Cluster) MustStart(tb testing.TB, env ...string) *Replica {
	tb.Helper()
	return MustStartCmd(tb, c.Command(env...))
}

// MustStartBinary is MustStart with another build of parley (see
// PlainBinary).
func (c *Cluster) MustStartBinary(tb testing.TB, bin string, env ...string) *Replica {
	tb.Helper()
	cmd := c.Command(env...)
	cmd.Path, cmd.Args[0] = bin, bin
	return MustStartCmd(tb, cmd)
}

// Command is the `parley serve` command of a replica on the cluster's
// database, on a free port of 127.0.0.1, with env added to its settings.
func (c *Cluster) Command(env ...string) *exec.Cmd {
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(append(os.Environ(), RaisedLimits...),
		"PARLEY_DATABASE_URL="+c.DatabaseURL,
		"PARLEY_JWT_SECRET="+c.Secret,
		"PARLEY_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(append(cmd.Env, c.Env...), env...)
	return cmd
}

// MustStartCmd starts a prepared `parley serve` command and waits until it
// serves and is ready.
func MustStartCmd(tb testing.TB, cmd *exec.Cmd) *Replica {
	tb.Helper()
	return MustStartCmdClient(tb, cmd, http.DefaultClient)
}

// MustStartCmdClient is MustStartCmd for a replica that hc can reach, e.g.
// one serving HTTPS with a certificate from a test's own CA. The replica's
// URL is https:// when it serves TLS.
func MustStartCmdClient(tb testing.TB, cmd *exec.Cmd, hc *http.Client) *Replica {
	tb.Helper()
	r := &Replica{HTTP: hc, cmd: cmd, log: &syncBuffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(pw, r.log)
	cmd.Stdout = r.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start parley: %v", err)
	}
	go func() {
		r.waitErr = cmd.Wait()
		pw.Close()
		close(r.exited)
	}()
	tb.Cleanup(func() {
		r.Kill()
		if tb.Failed() {
			tb.Logf("replica %s log:\n%s", r.URL, r.Log())
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
				TLS  bool   `json:"tls"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "parley serving" {
				scheme := "http://"
				if line.TLS {
					scheme = "https://"
				}
				addr <- scheme + line.Addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		r.URL = a
	case <-r.exited:
		tb.Fatalf("parley exited before serving: %v\n%s", r.waitErr, r.Log())
	case <-time.After(60 * time.Second):
		tb.Fatalf("parley did not start in 60s:\n%s", r.Log())
	}
	if err := r.WaitReady(30 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return r
}

// WaitReady waits until /readyz answers 200.
func (r *Replica) WaitReady(d time.Duration) error {
	return r.waitStatus(d, http.StatusOK)
}

// WaitUnready waits until /readyz answers 503.
func (r *Replica) WaitUnready(d time.Duration) error {
	return r.waitStatus(d, http.StatusServiceUnavailable)
}

func (r *Replica) waitStatus(d time.Duration, want int) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := 0
	for time.Now().Before(deadline) {
		resp, err := r.HTTP.Get(r.URL + "/readyz")
		if err == nil {
			last = resp.StatusCode
			resp.Body.Close()
			if last == want {
				return nil
			}
		}
		<-tick.C
	}
	return fmt.Errorf("replica %s: /readyz did not answer %d within %s (last %d)", r.URL, want, d, last)
}

// PID is the replica's process id.
func (r *Replica) PID() int { return r.cmd.Process.Pid }

// Signal sends sig to the replica.
func (r *Replica) Signal(sig os.Signal) error { return r.cmd.Process.Signal(sig) }

// Kill kills the replica and waits for it.
func (r *Replica) Kill() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// Exited is closed when the process has exited.
func (r *Replica) Exited() <-chan struct{} { return r.exited }

// ExitErr is the process's exit error once Exited is closed.
func (r *Replica) ExitErr() error { <-r.exited; return r.waitErr }

// Log is everything the replica wrote so far.
func (r *Replica) Log() string { return r.log.String() }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Client calls the API as one user.
type Client struct {
	Base    string
	Token   string
	Session chat.Session
	HTTP    *http.Client
}

// Response is a finished call.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem is an RFC 9457 problem body.
type Problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

// MustProblem checks the response is a problem+json with status want.
func (r *Response) MustProblem(tb testing.TB, want int) Problem {
	tb.Helper()
	if r.Status != want {
		tb.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Fatalf("content type %q, want application/problem+json: %s", ct, r.Body)
	}
	var p Problem
	r.JSON(tb, &p)
	if p.Status != want || p.Title == "" {
		tb.Fatalf("problem %+v: want status %d and a title", p, want)
	}
	if want == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		tb.Fatalf("401 without WWW-Authenticate: Bearer")
	}
	return p
}

// Do sends a request; body is JSON-encoded unless it is []byte or nil.
func (c *Client) Do(tb testing.TB, method, path string, body any) *Response {
	tb.Helper()
	resp, err := c.Try(method, path, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// Try is Do without failing the test, for goroutines.
func (c *Client) Try(method, path string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// httpClient is c.HTTP, else http.DefaultClient.
func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// As returns a client for the same user on another replica.
func (c *Client) As(base string) *Client {
	cp := *c
	cp.Base = base
	return &cp
}

// MustRegister registers username and returns a client holding its token.
func MustRegister(tb testing.TB, base, username string) *Client {
	tb.Helper()
	return MustRegisterClient(tb, nil, base, username)
}

// MustRegisterClient is MustRegister calling through hc (nil:
// http.DefaultClient), which the returned client keeps.
func MustRegisterClient(tb testing.TB, hc *http.Client, base, username string) *Client {
	tb.Helper()
	return mustSession(tb, &Client{Base: base, HTTP: hc}, "register", username, http.StatusCreated)
}

// MustLogin logs in a user registered by MustRegister and returns a client
// holding the new token.
func MustLogin(tb testing.TB, base, username string) *Client {
	tb.Helper()
	return mustSession(tb, &Client{Base: base}, "login", username, http.StatusOK)
}

// mustSession registers or logs in (op) username with MustRegister's
// password and keeps the session in c.
func mustSession(tb testing.TB, c *Client, op, username string, want int) *Client {
	tb.Helper()
	resp := c.Do(tb, http.MethodPost, "/v1/auth/"+op, map[string]string{"username": username, "password": "password-" + username})
	if resp.Status != want {
		tb.Fatalf("%s %s: %d %s", op, username, resp.Status, resp.Body)
	}
	resp.JSON(tb, &c.Session)
	c.Token = c.Session.AccessToken
	return c
}

// MustCreateRoom creates a room and returns it.
func (c *Client) MustCreateRoom(tb testing.TB, name string, vis chat.Visibility) chat.Room {
	tb.Helper()
	resp := c.Do(tb, http.MethodPost, "/v1/rooms", map[string]string{"name": name, "visibility": string(vis)})
	if resp.Status != http.StatusCreated {
		tb.Fatalf("create room: %d %s", resp.Status, resp.Body)
	}
	var r chat.Room
	resp.JSON(tb, &r)
	return r
}

// MustJoin joins a public room.
func (c *Client) MustJoin(tb testing.TB, roomID string) {
	tb.Helper()
	if resp := c.Do(tb, http.MethodPost, "/v1/rooms/"+roomID+"/join", nil); resp.Status != http.StatusOK {
		tb.Fatalf("join: %d %s", resp.Status, resp.Body)
	}
}

// MustPost posts a message and returns it.
func (c *Client) MustPost(tb testing.TB, roomID, body string) chat.Message {
	tb.Helper()
	resp := c.Do(tb, http.MethodPost, "/v1/rooms/"+roomID+"/messages", map[string]string{"body": body})
	if resp.Status != http.StatusCreated {
		tb.Fatalf("post: %d %s", resp.Status, resp.Body)
	}
	var m chat.Message
	resp.JSON(tb, &m)
	return m
}

// Metrics reads the replica's /metrics: each sample's value by its series
// as the text format prints it, e.g.
// parley_http_requests_total{operation="register",status="201"}.
func (r *Replica) Metrics(tb testing.TB) map[string]float64 {
	tb.Helper()
	resp, err := r.HTTP.Get(r.URL + "/metrics")
	if err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("metrics: status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Parley's label values hold no spaces, so the value is what
		// follows the last one.
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			tb.Fatalf("metrics: bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("metrics: bad sample line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	return out
}

// FreeAddr is an address on 127.0.0.1 where nothing listens: a port that
// was free a moment ago, for a server to listen on or a client to be
// refused by.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitMetric polls /metrics until series has the value want, failing after
// d: counters move just after the work they count, so a client can see the
// work done a moment before the figure.
func (r *Replica) WaitMetric(tb testing.TB, series string, want float64, d time.Duration) map[string]float64 {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		m := r.Metrics(tb)
		if v, ok := m[series]; ok && v == want {
			return m
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s = %v after %s, want %v", series, m[series], d, want)
		}
		time.Sleep(20 * time.Millisecond) // poll /metrics
	}
}

// PrivateServer is a Postgres server of a test's own, which the test may
// stop and start again (the shared test server must stay up).
type PrivateServer struct {
	dir     string
	cluster *localpg.Cluster
}

// NewPrivateServer starts a private Postgres cluster for one test.
func NewPrivateServer(tb testing.TB) *PrivateServer {
	tb.Helper()
	dir, err := os.MkdirTemp("", "parley-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	// The cluster runs as the postgres user, who must reach the folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	s := &PrivateServer{dir: dir}
	s.Start(tb)
	tb.Cleanup(func() {
		if s.cluster != nil {
			_ = s.cluster.Stop()
		}
		_ = os.RemoveAll(dir)
	})
	return s
}

// URL is the URL of database dbname on the server.
func (s *PrivateServer) URL(dbname string) string { return s.cluster.URL(dbname) }

// Start starts the server (again).
func (s *PrivateServer) Start(tb testing.TB) {
	tb.Helper()
	c, err := localpg.Start(context.Background(), s.dir, nil)
	if err != nil {
		tb.Fatalf("start private postgres: %v", err)
	}
	s.cluster = c
}

// Stop stops the server.
func (s *PrivateServer) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.cluster.Stop(); err != nil {
		tb.Fatalf("stop private postgres: %v", err)
	}
}

// MustConnect opens a connection to the database at url, as an operator
// would, to look at or change what Parley stored. It is closed when the
// test ends.
func MustConnect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
