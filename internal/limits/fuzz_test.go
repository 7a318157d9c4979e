package limits

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientIP reads any X-Forwarded-For behind any peer: the client is
// always an address without a zone, the peer itself unless the peer is a
// trusted proxy, and otherwise the peer or an address the header names.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:443", "203.0.113.7, 10.0.0.2")
	f.Add("10.0.0.1:443", "garbage, 10.0.0.3")
	f.Add("[::1]:80", "[2001:db8::1]:1234,::ffff:198.51.100.2")
	f.Add("10.0.0.1:1", "fe80::1%eth0, 10.0.0.9")
	f.Add("192.0.2.1:5", "203.0.113.7")
	f.Add("not an address", "")
	proxies := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := &http.Request{RemoteAddr: peer, Header: http.Header{}}
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		got := proxies.ClientIP(r)
		p, ok := parseAddr(peer)
		if !ok {
			if got != peer {
				t.Fatalf("peer %q is no address, client %q", peer, got)
			}
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("peer %q, X-Forwarded-For %q: client %q is not a plain address (%v)", peer, xff, got, err)
		}
		if !proxies.trusted(p) && a != p.WithZone("") {
			t.Fatalf("untrusted peer %q, X-Forwarded-For %q: client %q", peer, xff, got)
		}
		if a != p.WithZone("") && !strings.Contains(xff, strings.Split(got, "%")[0]) && !containsAddr(xff, a) {
			t.Fatalf("peer %q, X-Forwarded-For %q: client %q is neither", peer, xff, got)
		}
		if (Proxies{}).ClientIP(r) != p.WithZone("").String() {
			t.Fatalf("with no trusted proxies, client %q, want the peer %q", (Proxies{}).ClientIP(r), p)
		}
	})
}

// containsAddr reports whether any entry of xff parses as a.
func containsAddr(xff string, a netip.Addr) bool {
	for _, e := range strings.Split(xff, ",") {
		if b, ok := parseAddr(strings.TrimSpace(e)); ok && b.WithZone("") == a {
			return true
		}
	}
	return false
}
