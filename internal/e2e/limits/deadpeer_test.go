//go:build linux

package limits

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/parley-chat/parley/internal/e2e"
)

// peerNet is a network namespace joined to the host by a veth pair: a
// client in it is a phone on a link the test can cut, so that it vanishes
// without a FIN or an RST, which closing a socket on the same host cannot
// do.
type peerNet struct {
	name     string // the namespace
	nsIf     string // the namespace's end of the veth pair
	hostAddr netip.Addr
}

// mustPeerNet creates a namespace and a veth pair on a random /30 of
// 198.18.0.0/15 (RFC 2544's benchmarking range), with random names so that
// concurrent test runs do not collide. It is deleted when the test ends.
func mustPeerNet(tb testing.TB) *peerNet {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("dead-peer test skipped: creating a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("dead-peer test skipped: needs ip from iproute2 (.ci/run installs it)")
	}
	var rnd [7]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		tb.Fatal(err)
	}
	id := hex.EncodeToString(rnd[:3])
	// 2^15 subnets of 4 addresses: .1 for the host, .2 for the namespace.
	base := binary.BigEndian.Uint32([]byte{198, 18, 0, 0}) + 4*(binary.BigEndian.Uint32(rnd[3:])%(1<<15))
	addr := func(n uint32) netip.Addr {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+n)
		return netip.AddrFrom4(b)
	}
	p := &peerNet{name: "parley-dp-" + id, nsIf: "pdp" + id + "n", hostAddr: addr(1)}
	hostIf := "pdp" + id + "h"
	mustIP(tb, "netns", "add", p.name)
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", p.name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", p.name, err, out)
		}
	})
	mustIP(tb, "link", "add", hostIf, "type", "veth", "peer", "name", p.nsIf, "netns", p.name)
	tb.Cleanup(func() {
		// Deleting the host end deletes the pair. Deleting the namespace
		// alone would not: the client's socket, closed on a cut link,
		// keeps retransmitting its FIN for minutes, and keeps the
		// namespace, its devices and their addresses alive until then.
		if out, err := exec.Command("ip", "link", "del", hostIf).CombinedOutput(); err != nil {
			tb.Errorf("ip link del %s: %v: %s", hostIf, err, out)
		}
	})
	mustIP(tb, "addr", "add", p.hostAddr.String()+"/30", "dev", hostIf)
	mustIP(tb, "link", "set", hostIf, "up")
	mustIP(tb, "-n", p.name, "addr", "add", addr(2).String()+"/30", "dev", p.nsIf)
	mustIP(tb, "-n", p.name, "link", "set", p.nsIf, "up")
	return p
}

func mustIP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %v: %v: %s", args, err, out)
	}
}

// vanish cuts the namespace's link: the client's kernel neither answers
// nor acknowledges anything from now on.
func (p *peerNet) vanish(tb testing.TB) {
	tb.Helper()
	mustIP(tb, "-n", p.name, "link", "set", p.nsIf, "down")
}

// client is an HTTP client whose connections are made from inside the
// namespace: each dial runs on an OS thread moved into it, so the socket
// belongs to the namespace (a socket stays in the namespace it was made
// in). The thread is never handed back to the Go scheduler: it ends with
// its goroutine.
func (p *peerNet) client() *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread() // no unlock: the thread is left in the namespace
			fd, err := unix.Open("/run/netns/"+p.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				ch <- result{nil, fmt.Errorf("open namespace: %w", err)}
				return
			}
			defer unix.Close(fd)
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("enter namespace: %w", err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// TestDeadPeer: a client whose network vanishes (no FIN, no RST) while it
// holds a user stream loses it within PARLEY_TCP_USER_TIMEOUT plus a
// heartbeat, so its user, at a cap of one stream, can open another; without
// the timeout the kernel would keep retransmitting the heartbeats for about
// 15 minutes, and the slot stays held (the control case).
func TestDeadPeer(t *testing.T) {
	const (
		userTimeout = 2 * time.Second
		heartbeat   = 1 * time.Second
		// slack covers retransmission timer granularity and a loaded,
		// race-instrumented replica noticing the error.
		slack = 6 * time.Second
		bound = userTimeout + heartbeat + slack
	)
	for _, tt := range []struct {
		name        string
		userTimeout time.Duration
		freed       bool
	}{
		{"Freed", userTimeout, true},
		{"HeldWithoutTimeout", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustPeerNet(t)
			c := e2e.NewCluster(t, e2e.DefaultLimits...)
			r := c.MustStart(t, "PARLEY_ADDR="+p.hostAddr.String()+":0",
				"PARLEY_STREAMS_PER_USER=1",
				"PARLEY_HEARTBEAT="+heartbeat.String(),
				"PARLEY_TCP_USER_TIMEOUT="+tt.userTimeout.String())
			alice := e2e.MustRegister(t, r.URL, "alice")
			phone := alice.As(r.URL)
			phone.HTTP = p.client()
			ep := endpoint{"UserStream", ""}

			// The phone reads its stream up to ready through the veth pair.
			mustOpen(t, phone, ep, "")
			r.WaitMetric(t, "parley_streams_open", 1, streamWait)
			mustRefuse(t, alice, ep, "", http.StatusTooManyRequests)

			p.vanish(t)
			gone := time.Now()
			deadline := gone.Add(bound)
			for r.Metrics(t)["parley_streams_open"] != 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond) // poll /metrics
			}
			freedAfter := time.Since(gone)
			open := r.Metrics(t)["parley_streams_open"]
			if !tt.freed {
				if open != 1 {
					t.Fatalf("without TCP_USER_TIMEOUT the stream ended %s after the peer vanished: the test does not isolate the timeout", freedAfter.Round(time.Millisecond))
				}
				mustRefuse(t, alice, ep, "", http.StatusTooManyRequests)
				return
			}
			if open != 0 {
				t.Fatalf("the vanished client's stream still holds its slot %s after it vanished (bound %s: timeout %s + heartbeat %s + %s)",
					freedAfter.Round(time.Millisecond), bound, userTimeout, heartbeat, slack)
			}
			t.Logf("slot freed %s after the peer vanished (PARLEY_TCP_USER_TIMEOUT=%s, PARLEY_HEARTBEAT=%s)",
				freedAfter.Round(10*time.Millisecond), userTimeout, heartbeat)
			mustOpen(t, alice, ep, "")
		})
	}
}
