package limits

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name    string
		proxies Proxies
		peer    string
		xff     []string
		want    string
	}{
		{"NoProxiesPeer", nil, "203.0.113.5:4000", nil, "203.0.113.5"},
		{"NoProxiesHeaderIgnored", nil, "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"UntrustedPeerSpoofs", proxies, "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"TrustedPeer", proxies, "10.0.0.2:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"ReadFromTheRight", proxies, "10.0.0.2:4000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"SkipsTrustedHops", proxies, "10.0.0.2:4000", []string{"6.6.6.6, 198.51.100.1, 10.1.1.1 , 10.2.2.2"}, "198.51.100.1"},
		{"SeveralHeaders", proxies, "10.0.0.2:4000", []string{"6.6.6.6, 198.51.100.1", "10.1.1.1"}, "198.51.100.1"},
		{"AllTrusted", proxies, "10.0.0.2:4000", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"NoHeader", proxies, "10.0.0.2:4000", nil, "10.0.0.2"},
		{"GarbageStopsAtProxy", proxies, "10.0.0.2:4000", []string{"198.51.100.1, nonsense, 10.1.1.1"}, "10.1.1.1"},
		{"IPv6Peer", proxies, "[::1]:4000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"MappedIPv4", proxies, "[::ffff:10.0.0.2]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"EntryWithPort", proxies, "10.0.0.2:4000", []string{"198.51.100.1:5555"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tt.proxies.ClientIP(r); got != tt.want {
				t.Fatalf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
