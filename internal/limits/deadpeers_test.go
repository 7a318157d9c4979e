//go:build linux

package limits

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestDeadPeerListenConfig checks the accepted connections (not only the
// listening socket) carry the timeout and keep-alives. The end-to-end test
// of a vanished peer is internal/e2e/limits TestDeadPeer.
func TestDeadPeerListenConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"Set", 2500 * time.Millisecond, 2500 * time.Millisecond},
		{"ZeroIsKernelDefault", 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lc := DeadPeerListenConfig(tt.set)
			ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			conn, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			raw, err := conn.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got time.Duration
			var gerr error
			if err := raw.Control(func(fd uintptr) { got, gerr = userTimeout(fd) }); err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			if got != tt.want {
				t.Fatalf("accepted connection's TCP_USER_TIMEOUT %s, want %s", got, tt.want)
			}
		})
	}
}
