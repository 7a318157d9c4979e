package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/e2e"
)

// TestVersion: parley version prints the version from the build information
// (the test binary is built with plain go build), and /healthz reports the
// same. The version stamped at link time is tested with the Dockerfile's
// build step (internal/e2e/deploy).
func TestVersion(t *testing.T) {
	t.Run("FromBuildInfo", func(t *testing.T) {
		v := strings.TrimSpace(MustSucceed(t, "", env(), "version").Stdout)
		if v == "" || strings.ContainsAny(v, " \n\t") {
			t.Fatalf("version %q: want one word", v)
		}
		cl := e2e.NewCluster(t)
		r := cl.MustStart(t)
		resp, err := http.Get(r.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Status  string `json:"status"`
			Version string `json:"version"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || body.Status != "ok" || body.Version != v {
			t.Fatalf("/healthz: %d %q %+v, want 200 application/json {ok %s}", resp.StatusCode, resp.Header.Get("Content-Type"), body, v)
		}
	})
	t.Run("ErrArgument", func(t *testing.T) {
		if r := MustRun(t, "", env(), "version", "now"); r.Code != 2 || !strings.Contains(r.Stderr, "no arguments") {
			t.Fatalf("exit %d, want 2: %s", r.Code, r.Stderr)
		}
	})
}

// MustHangingServer accepts connections and never answers on them, until
// the test ends; it returns its address.
func MustHangingServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestHealthcheck: parley healthcheck exits 0 on a 200 only, gives up after
// its timeout, and refuses a bad command line with exit 2.
func TestHealthcheck(t *testing.T) {
	cl := e2e.NewCluster(t)
	r := cl.MustStart(t)
	hanging := MustHangingServer(t)
	redirect := httptest.NewServer(http.RedirectHandler(r.URL+"/readyz", http.StatusFound))
	t.Cleanup(redirect.Close)
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"Readyz", []string{r.URL + "/readyz"}, 0, ""},
		{"Healthz", []string{"-timeout", "5s", r.URL + "/healthz"}, 0, ""},
		{"ErrNotFound", []string{r.URL + "/nope"}, 1, "404"},
		{"ErrRedirect", []string{redirect.URL}, 1, "302"},
		{"ErrRefused", []string{"http://" + e2e.FreeAddr(t) + "/readyz"}, 1, "refused"},
		{"ErrTimeout", []string{"-timeout", "300ms", "http://" + hanging + "/readyz"}, 1, "deadline exceeded"},
		{"ErrNoURL", nil, 2, "one URL"},
		{"ErrTwoURLs", []string{r.URL, r.URL}, 2, "one URL"},
		{"ErrNotHTTP", []string{"ftp://example.com/"}, 2, "not an http"},
		{"ErrBadTimeout", []string{"-timeout", "0s", r.URL + "/readyz"}, 2, "-timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := MustRun(t, "", env(), append([]string{"healthcheck"}, tt.args...)...)
			if res.Code != tt.wantCode || !strings.Contains(res.Stderr, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q: want exit %d and %q", res.Code, res.Stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}
