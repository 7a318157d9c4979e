package limits

import (
	"net"
	"syscall"
	"time"
)

// Keep-alive probes of accepted connections: an idle connection (no stream
// on it, or one between heartbeats) is probed after keepAliveIdle. The
// probes go unanswered on a dead peer, and TCP_USER_TIMEOUT ends it.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

// DeadPeerListenConfig is the listen configuration that keeps vanished
// clients (a phone gone out of coverage, a laptop closed: no FIN, no RST)
// from holding their connections, and so their stream slots, for the 15
// minutes or so the kernel otherwise retransmits to them. Sent data that
// stays unacknowledged for userTimeout ends the connection (TCP_USER_TIMEOUT,
// set on the listening socket and inherited by each accepted one); a
// stream's heartbeats keep data in flight, so a dead stream ends within
// userTimeout plus a heartbeat interval. Idle connections are probed by
// keep-alives, which the same timeout bounds. userTimeout 0 leaves the
// kernel's default; it is a no-op where the platform lacks the option.
func DeadPeerListenConfig(userTimeout time.Duration) net.ListenConfig {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
	}}
	if userTimeout > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = setUserTimeout(fd, userTimeout) }); err != nil {
				return err
			}
			return serr
		}
	}
	return lc
}
