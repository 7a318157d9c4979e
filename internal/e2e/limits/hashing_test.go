package limits

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/e2e"
)

// MustPeakRSS reads a process's peak resident set size (VmHWM) in bytes.
func MustPeakRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestHashingFlood sends 1,000 concurrent logins (right passwords, wrong
// ones and unknown users) to one replica: its peak RSS stays under
// 150 MB + 2.5 x 19 MiB per CPU, /healthz answers within 2 s throughout,
// every answer is 200, 401 or a 503 with Retry-After, and a client that
// waits Retry-After gets in. The login limits are off here: this is about
// the hashing bound alone. The replica is built without the race detector,
// whose shadow memory would otherwise be most of what is measured.
func TestHashingFlood(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_LOGIN_FAILURES=0", "PARLEY_LOGIN_FAILURES_PER_USER=0")
	r := c.MustStartBinary(t, e2e.PlainBinary(t))
	const users = 20
	for i := range users {
		e2e.MustRegister(t, r.URL, fmt.Sprintf("user%d", i))
	}
	start := MustPeakRSS(t, r.PID())
	procs := runtime.GOMAXPROCS(0) // the replica runs on the same CPUs
	bound := int64(150e6 + 2.5*19*(1<<20)*float64(procs))

	// /healthz is probed from a process of its own, as an orchestrator
	// would: probed from this process it measured mostly this process's
	// scheduler, queueing the probe behind the flood's 1,000
	// race-instrumented client goroutines (the replica's handler took
	// under 25 ms while the probe saw 750 ms).
	probe := e2e.StartHealthProbe(t, r.URL+"/healthz", 100*time.Millisecond, 2*time.Second)

	const logins = 1000
	tr := &http.Transport{MaxIdleConnsPerHost: logins}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	var mu sync.Mutex
	counts := map[int]int{}
	var retryAfter string
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, pw := fmt.Sprintf("user%d", i%users), ""
			switch i % 3 {
			case 0:
				pw = "password-" + name
			case 1:
				pw = "wrong-password"
			default:
				name, pw = fmt.Sprintf("nobody%d", i), "password-nobody"
			}
			<-gate
			cl := &e2e.Client{Base: r.URL, HTTP: hc}
			resp, err := cl.Try(http.MethodPost, "/v1/auth/login", map[string]string{"username": name, "password": pw})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				counts[-1]++
				return
			}
			counts[resp.Status]++
			if resp.Status == http.StatusServiceUnavailable {
				retryAfter = resp.Header.Get("Retry-After")
			}
		}()
	}
	close(gate)
	wg.Wait()
	probes, slowest, err := probe.Stop()
	if err != nil {
		t.Fatalf("/healthz within 2s throughout the flood: %v", err)
	}
	peak := MustPeakRSS(t, r.PID())
	t.Logf("answers %v; peak RSS %.1f MB (%.1f MB before the flood, bound %.1f MB with GOMAXPROCS %d); slowest /healthz %s of %d",
		counts, float64(peak)/1e6, float64(start)/1e6, float64(bound)/1e6, procs, slowest, probes)
	for status, n := range counts {
		switch status {
		case http.StatusOK, http.StatusUnauthorized, http.StatusServiceUnavailable:
		default:
			t.Errorf("%d answers with status %d", n, status)
		}
	}
	if counts[http.StatusOK] == 0 || counts[http.StatusUnauthorized] == 0 {
		t.Errorf("answers %v: want some logins through", counts)
	}
	if peak > bound {
		t.Errorf("peak RSS %d bytes, over the bound of %d", peak, bound)
	}
	if counts[http.StatusServiceUnavailable] > 0 {
		secs, err := strconv.Atoi(retryAfter)
		if err != nil || secs < 1 {
			t.Fatalf("503 with Retry-After %q, want whole seconds >= 1", retryAfter)
		}
		time.Sleep(time.Duration(secs) * time.Second) // what the client was told to do
	}
	cl := &e2e.Client{Base: r.URL}
	if resp := cl.Do(t, http.MethodPost, "/v1/auth/login", map[string]string{"username": "user0", "password": "password-user0"}); resp.Status != http.StatusOK {
		t.Fatalf("login after the flood: %d %s", resp.Status, resp.Body)
	}
}
