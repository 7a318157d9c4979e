// Package demo tests the browser demo as a person meets it: `parley demo`
// and a real `parley serve` on two origins, and Debian's headless Chromium
// driven by playwright-core (browser/demo.mjs) with two pages as two users.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// chromium is Debian's browser; playwright-core never downloads its own.
const chromium = "/usr/bin/chromium"

func TestDemoInChromium(t *testing.T) {
	dir := mustBrowser(t)
	tests := []struct {
		scenario string
		env      []string // for the API
	}{
		{"live", nil},
		// Short access tokens: the restart scenario ends by waiting for
		// the pages' streams to end with reauth and come back.
		{"restart", []string{"PARLEY_ACCESS_TTL=30s"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) { runScenario(t, dir, tt.scenario, tt.env...) })
	}
}

// mustBrowser finds node and Chromium and installs the pinned
// playwright-core; it returns the folder of the browser tests. Without
// node or Chromium the test is skipped, except in CI (CI=true), where it
// fails: .ci/run installs both.
func mustBrowser(t *testing.T) string {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missing = append(missing, "npm")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium)
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("the browser tests need %s (Debian: apt-get install chromium nodejs npm; .ci/run installs them)", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "browser")
	stamp := filepath.Join(dir, "node_modules", ".installed")
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(stamp); err == nil && st.ModTime().After(lock.ModTime()) {
		return dir
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// artifactsDir is where the screenshots go: $PARLEY_ARTIFACTS_DIR, else
// test-artifacts/ at the top of the repository (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PARLEY_ARTIFACTS_DIR")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "test-artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runScenario starts the API and the demo on two origins, then runs one
// scenario of browser/demo.mjs, answering its requests to stop and start
// the API.
func runScenario(t *testing.T, dir, scenario string, apiEnv ...string) {
	demoAddr, apiAddr := e2e.FreeAddr(t), e2e.FreeAddr(t)
	apiURL, demoURL := "http://"+apiAddr, "http://"+demoAddr
	cluster := e2e.NewCluster(t, append([]string{"PARLEY_CORS_ORIGINS=" + demoURL, "PARLEY_ADDR=" + apiAddr}, apiEnv...)...)
	api := cluster.MustStart(t)
	mustStartDemo(t, demoAddr, apiURL)

	shot := filepath.Join(artifactsDir(t), "demo-"+scenario+".png")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	node := exec.CommandContext(ctx, "node", "demo.mjs", scenario)
	node.Dir = dir
	// Chromium runs under node: on a timeout or a failed test, end the
	// whole process group, not node alone.
	node.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	node.Cancel = func() error { return syscall.Kill(-node.Process.Pid, syscall.SIGKILL) }
	node.Env = append(os.Environ(), "DEMO_URL="+demoURL+"/", "API_URL="+apiURL, "SCREENSHOT="+shot, "CHROMIUM="+chromium)
	var stderr bytes.Buffer
	node.Stderr = &stderr
	stdin, err := node.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-node.Process.Pid, syscall.SIGKILL) })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		command, ok := strings.CutPrefix(line, "@@ ")
		if !ok {
			t.Log(line)
			continue
		}
		switch command {
		case "stop-api":
			// A deploy's restart: SIGTERM ends the streams, and the
			// process exits; the pages see their streams drop.
			if err := api.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("stop the API: %v", err)
			}
			select {
			case <-api.Exited():
			case <-time.After(25 * time.Second):
				t.Fatalf("the API did not exit within 25 s of SIGTERM:\n%s", api.Log())
			}
			t.Logf("API stopped (%v)", api.ExitErr())
		case "start-api":
			api = cluster.MustStart(t) // the same address and database
			t.Log("API started again")
		default:
			t.Fatalf("unknown command from demo.mjs: %q", command)
		}
		if _, err := io.WriteString(stdin, "ok\n"); err != nil {
			t.Fatalf("answer demo.mjs: %v", err)
		}
	}
	err = node.Wait()
	if stderr.Len() > 0 {
		t.Logf("demo.mjs stderr:\n%s", stderr.String())
	}
	t.Logf("screenshot of the final page: %s", shot)
	if err != nil {
		t.Fatalf("demo.mjs %s: %v", scenario, err)
	}
}

// mustStartDemo runs `parley demo` on addr until the test ends.
func mustStartDemo(t *testing.T, addr, apiURL string) {
	t.Helper()
	var log lockedBuffer
	cmd := exec.Command(e2e.Binary(), "demo", "-addr", addr, "-api", apiURL)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start parley demo: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("parley demo log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("parley demo exited: %v\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond): // poll until it listens
		}
		if time.Now().After(deadline) {
			t.Fatalf("parley demo did not serve within 30 s:\n%s", log.String())
		}
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDemoCommand checks `parley demo`'s command line without a browser.
func TestDemoCommand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"BadAPI", []string{"demo", "-api", "localhost:8080"}, 2, "is not an http:// or https:// URL"},
		{"APIWithPath", []string{"demo", "-api", "http://localhost:8080/v1"}, 2, "give the API's origin only"},
		{"ExtraArgument", []string{"demo", "now"}, 2, "unexpected arguments"},
		{"Help", []string{"help"}, 0, "parley demo [-addr :8081] [-api http://localhost:8080]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(e2e.Binary(), tt.args...)
			cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(string(out), tt.want) {
				t.Fatalf("parley %s: exit %d, want %d, output lacks %q:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out)
			}
		})
	}
}
