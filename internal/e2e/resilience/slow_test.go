package resilience

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// MustDialStalled opens a room stream on a raw socket with a tiny receive
// buffer and sends the request, but never reads: a client that stalled.
func MustDialStalled(tb testing.TB, base, roomID, token string) net.Conn {
	tb.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /v1/rooms/%s/events HTTP/1.1\r\nHost: parley\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n", roomID, token)
	return conn
}

// TestSlowConsumer: a subscriber that never reads does not delay delivery
// to the others, is cut off, and the replica's goroutines and memory
// return to where they were.
func TestSlowConsumer(t *testing.T) {
	const posts, posters = 1500, 4
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	fast := alice.OpenStream(t, room.ID, "", nil)
	fast.UntilReady(t, wait)
	http.DefaultClient.CloseIdleConnections()
	base := MustSettle(t, r, 1, -1)

	stalled := MustDialStalled(t, r.URL, room.ID, alice.Token)
	MustSettle(t, r, 2, -1)

	// 16 KB messages: 4000 four-byte characters.
	body := strings.Repeat("😀", 4000)
	var wg sync.WaitGroup
	errs := make(chan error, posters)
	for p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < posts; i += posters {
				resp, err := alice.Try(http.MethodPost, "/v1/rooms/"+room.ID+"/messages", map[string]string{"body": body})
				if err != nil || resp.Status != http.StatusCreated {
					errs <- fmt.Errorf("post %d: %v", i, err)
					return
				}
			}
		}()
	}
	// The reading subscriber keeps up while the stalled one is cut off.
	for i := range posts {
		if f := fast.Next(t, wait); f.ID != int64(i)+2 {
			t.Fatalf("fast subscriber: got seq %d, want %d", f.ID, i+2)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The stalled client now reads what reached its socket: a gap-free
	// prefix of the room, then the server's close.
	if err := stalled.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	got := MustReadIDs(t, stalled)
	if len(got) == 0 || len(got) >= posts {
		t.Fatalf("stalled client received %d of %d events; want it cut off part-way", len(got), posts)
	}
	for i, id := range got {
		if id != int64(i)+2 {
			t.Fatalf("stalled client: event %d has seq %d, want %d", i, id, i+2)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	MustSettle(t, r, 1, base)
	// The cut-off is counted as what it was, and nothing else ended.
	m := r.WaitMetric(t, `parley_stream_ends_total{reason="slow_consumer"}`, 1, wait)
	if n := m[`parley_stream_ends_total{reason="client_gone"}`]; n != 0 {
		t.Errorf("%v streams counted as client_gone, want 0", n)
	}
	t.Logf("heap in use after the cut-off: %.1f MiB", r.Metrics(t)["go_memstats_heap_inuse_bytes"]/(1<<20))
}

// MustReadIDs reads a raw SSE response to its end and returns the ids.
func MustReadIDs(tb testing.TB, conn net.Conn) []int64 {
	tb.Helper()
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("status %d", resp.StatusCode)
	}
	var ids []int64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var id int64
		if _, err := fmt.Sscanf(sc.Text(), "id: %d", &id); err == nil {
			ids = append(ids, id)
		}
	}
	// The body ends at the server's close; a chunked body cut off part-way
	// ends in ErrUnexpectedEOF, which is that close too. So is a reset:
	// the server closed its socket while this client's window was shut,
	// the kernel gave the orphaned socket up after its zero-window probes
	// (tens of seconds on loopback), and the window update this client sends
	// when it starts reading is answered with RST. A loaded machine, where
	// the posting phase runs long, gets there.
	if err := sc.Err(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		tb.Fatalf("stalled stream did not end with the server's close: %v", err)
	}
	return ids
}

// MustSettle waits until the replica has subs stream subscribers and, when
// goroutines >= 0, at most that many goroutines (plus a small allowance
// for the runtime); it returns the goroutine count.
func MustSettle(tb testing.TB, r *e2e.Replica, subs float64, goroutines float64) float64 {
	tb.Helper()
	deadline := time.Now().Add(wait)
	var m map[string]float64
	for time.Now().Before(deadline) {
		m = r.Metrics(tb)
		if m["parley_stream_subscribers"] == subs && (goroutines < 0 || m["go_goroutines"] <= goroutines+2) {
			return m["go_goroutines"]
		}
		time.Sleep(50 * time.Millisecond) // poll /metrics
	}
	tb.Fatalf("replica did not settle: subscribers %v (want %v), goroutines %v (want <= %v+2)",
		m["parley_stream_subscribers"], subs, m["go_goroutines"], goroutines)
	return 0
}
