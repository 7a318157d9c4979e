package signals

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// channel is where s delivers frames of type typ: its durable frames or
// its ephemeral ones.
func channel(s *e2e.Stream, typ string) chan e2e.Frame {
	if chat.EphemeralType(chat.EventType(typ)) {
		return s.Signals
	}
	return s.Frames
}

// mustNextOf reads s until a frame of type typ and returns it, failing
// after d. Frames of other types are skipped.
func mustNextOf(tb testing.TB, s *e2e.Stream, typ string, d time.Duration) e2e.Frame {
	tb.Helper()
	deadline := time.After(d)
	frames := channel(s, typ)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				tb.Fatalf("stream ended before a %s frame", typ)
			}
			if f.Type == typ {
				return f
			}
		case <-deadline:
			tb.Fatalf("no %s frame within %s", typ, d)
		}
	}
}

// framesFor reads s's ephemeral frames for d and returns those of the
// given types; with d 0 it takes the frames already received.
func framesFor(s *e2e.Stream, d time.Duration, types ...string) []e2e.Frame {
	var out []e2e.Frame
	if d == 0 {
		for {
			select {
			case f, ok := <-s.Signals:
				if !ok {
					return out
				}
				if slices.Contains(types, f.Type) {
					out = append(out, f)
				}
			default:
				return out
			}
		}
	}
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.Signals:
			if !ok {
				return out
			}
			if slices.Contains(types, f.Type) {
				out = append(out, f)
			}
		case <-deadline:
			return out
		}
	}
}

// mustUntilReady reads s up to ready and checks that nothing ephemeral
// came before it.
func mustUntilReady(tb testing.TB, s *e2e.Stream) []e2e.Frame {
	tb.Helper()
	fs := s.UntilReady(tb, wait)
	if n := s.EarlySignals(); n > 0 {
		tb.Fatalf("%d ephemeral frames before ready", n)
	}
	return fs
}

func decode[T any](tb testing.TB, f e2e.Frame) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal([]byte(f.Data), &v); err != nil {
		tb.Fatalf("decode %s data %q: %v", f.Type, f.Data, err)
	}
	return v
}

// mustTyping sends a typing signal and checks the 204.
func mustTyping(tb testing.TB, c *e2e.Client, roomID string) {
	tb.Helper()
	if resp := c.Do(tb, http.MethodPost, "/v1/rooms/"+roomID+"/typing", nil); resp.Status != http.StatusNoContent {
		tb.Fatalf("typing: %d %s", resp.Status, resp.Body)
	}
}

// mustMarkRead moves c's read marker.
func mustMarkRead(tb testing.TB, c *e2e.Client, roomID string, seq int64) chat.ReadState {
	tb.Helper()
	resp := c.Do(tb, http.MethodPut, "/v1/rooms/"+roomID+"/read", map[string]int64{"seq": seq})
	if resp.Status != http.StatusOK {
		tb.Fatalf("mark read: %d %s", resp.Status, resp.Body)
	}
	var rs chat.ReadState
	resp.JSON(tb, &rs)
	return rs
}

// mustMembers lists a room's members as c sees them, by user id.
func mustMembers(tb testing.TB, c *e2e.Client, roomID string) map[string]chat.Member {
	tb.Helper()
	resp := c.Do(tb, http.MethodGet, "/v1/rooms/"+roomID+"/members", nil)
	if resp.Status != http.StatusOK {
		tb.Fatalf("members: %d %s", resp.Status, resp.Body)
	}
	var body struct {
		Members []chat.Member `json:"members"`
	}
	resp.JSON(tb, &body)
	out := map[string]chat.Member{}
	for _, m := range body.Members {
		out[m.User.ID] = m
	}
	return out
}

// rawFrame is one SSE frame as its lines came over the wire.
type rawFrame struct {
	lines []string
}

func (f rawFrame) field(name string) (string, bool) {
	for _, l := range f.lines {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimPrefix(v, " "), true
		}
	}
	return "", false
}

// openWire opens a stream (roomID "" for the user stream) and returns its
// frames as sent, without an SSE library's id bookkeeping, so a test can
// see which frames carry an id: line.
func openWire(tb testing.TB, c *e2e.Client, roomID, query string) <-chan rawFrame {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := http.DefaultClient.Do(c.StreamRequest(ctx, roomID, query))
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		tb.Fatalf("open stream: %v %v", err, resp)
	}
	out := make(chan rawFrame, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var cur rawFrame
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				cur.lines = append(cur.lines, l)
				continue
			}
			if len(cur.lines) > 0 {
				out <- cur
			}
			cur = rawFrame{}
		}
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return out
}

// mustWireEvent reads raw frames until one with event: typ.
func mustWireEvent(tb testing.TB, frames <-chan rawFrame, typ string) rawFrame {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				tb.Fatalf("stream ended before event %s", typ)
			}
			if ev, _ := f.field("event"); ev == typ {
				return f
			}
		case <-deadline:
			tb.Fatalf("no event %s within %s", typ, wait)
		}
	}
}
