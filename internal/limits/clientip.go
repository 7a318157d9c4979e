package limits

import (
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the addresses (CIDRs) of reverse proxies whose
// X-Forwarded-For is believed.
type Proxies []netip.Prefix

func (ps Proxies) trusted(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client behind r: the peer, or, when the
// peer is a trusted proxy, the first address in X-Forwarded-For read from
// the right that is not a trusted proxy. A header from anyone else changes
// nothing. An entry that is not an address ends the walk at the proxy that
// added it, as does the header's start when every entry is trusted.
func (ps Proxies) ClientIP(r *http.Request) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if len(ps) == 0 || !ps.trusted(peer) {
		return peer.String()
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		entries := strings.Split(hops[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, ok := parseAddr(strings.TrimSpace(entries[j]))
			if !ok {
				return client.String()
			}
			client = a
			if !ps.trusted(a) {
				return a.String()
			}
		}
	}
	return client.String()
}

// parseAddr parses an address with or without a port, dropping any zone
// (fe80::1%eth0 and fe80::1%eth1 are one client, not two to count apart).
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
