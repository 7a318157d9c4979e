package deploy

import (
	"net"
	"net/http"
	"testing"

	"github.com/parley-chat/parley/internal/e2e"
)

// fromAddr is a client of base whose connections come from ip (any
// 127.0.0.0/8 address reaches the loopback interface on Linux).
func fromAddr(tb testing.TB, base, ip string) *e2e.Client {
	tb.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	tb.Cleanup(tr.CloseIdleConnections)
	return &e2e.Client{Base: base, HTTP: &http.Client{Transport: tr}}
}

// TestNginxForwardsClientAddress: nginx adds the client's address to
// X-Forwarded-For, so replicas that trust nginx count failed logins per
// client. Clients on 127.0.0.2 and 127.0.0.3 each have their own count;
// without the header both would be nginx's 127.0.0.1 and share one.
func TestNginxForwardsClientAddress(t *testing.T) {
	t.Parallel()
	cl := e2e.NewCluster(t, "PARLEY_TRUSTED_PROXIES=127.0.0.1/32", "PARLEY_LOGIN_FAILURES=2")
	a, b := cl.MustStart(t), cl.MustStart(t)
	ng := MustNginx(t, a, b)
	e2e.MustRegister(t, ng.URL, "alice")
	login := func(c *e2e.Client, password string) *e2e.Response {
		t.Helper()
		return c.Do(t, http.MethodPost, "/v1/auth/login", map[string]string{"username": "alice", "password": password})
	}
	first, second := fromAddr(t, ng.URL, "127.0.0.2"), fromAddr(t, ng.URL, "127.0.0.3")
	for i := range 2 {
		if resp := login(first, "wrong-password"); resp.Status != http.StatusUnauthorized {
			t.Fatalf("failed login %d from 127.0.0.2: %d %s", i, resp.Status, resp.Body)
		}
	}
	if resp := login(first, "password-alice"); resp.Status != http.StatusTooManyRequests {
		t.Fatalf("login from 127.0.0.2 after 2 failures: %d %s, want 429", resp.Status, resp.Body)
	}
	if resp := login(second, "password-alice"); resp.Status != http.StatusOK {
		t.Fatalf("login from 127.0.0.3: %d %s, want 200: its failures are its own", resp.Status, resp.Body)
	}
}
