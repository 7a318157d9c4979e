package streams

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

// MustReadLine reads one line of a raw stream, failing after wait.
func MustReadLine(tb testing.TB, lines <-chan string) string {
	tb.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			tb.Fatal("stream ended")
		}
		return l
	case <-time.After(wait):
		tb.Fatalf("no line within %s", wait)
	}
	return ""
}

// TestStreamWire checks the stream as bytes on the wire: its headers,
// retry: before anything else, the ready event, message frames naming their
// type (contract v1.1), and the heartbeat comment.
func TestStreamWire(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_HEARTBEAT=300ms")
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)

	// Browser style: the token in the URL, no Authorization header.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		r.URL+"/v1/rooms/"+room.ID+"/events?after=0&access_token="+alice.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); resp.StatusCode != http.StatusOK || got != want {
			t.Fatalf("status %d, %s %q, want 200 and %q", resp.StatusCode, k, got, want)
		}
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-t.Context().Done():
				return
			}
		}
	}()
	want := []string{"retry: 1000", "", "id: 1", "event: member.joined"}
	for _, w := range want {
		if got := MustReadLine(t, lines); got != w {
			t.Fatalf("line %q, want %q", got, w)
		}
	}
	for got := MustReadLine(t, lines); got != "event: ready"; got = MustReadLine(t, lines) {
	}
	if got := MustReadLine(t, lines); !strings.HasPrefix(got, `data: {"room_id":"`+room.ID+`","last_seq":1}`) {
		t.Fatalf("ready data %q", got)
	}
	msg := alice.MustPost(t, room.ID, "hello")
	for got := MustReadLine(t, lines); got != "id: 2"; got = MustReadLine(t, lines) {
		if got != "" && got != ": ping" {
			t.Fatalf("line %q before the message frame", got)
		}
	}
	if got := MustReadLine(t, lines); got != "event: message" {
		t.Fatalf("line %q after the message's id, want event: message", got)
	}
	if got := MustReadLine(t, lines); !strings.HasPrefix(got, `data: {"id":"`+msg.ID+`"`) {
		t.Fatalf("message data %q", got)
	}
	for got := MustReadLine(t, lines); got != ": ping"; got = MustReadLine(t, lines) {
		if got != "" {
			t.Fatalf("unexpected line %q while idle", got)
		}
	}
	// The request is logged when the stream ends, by path only (tokens in
	// URLs never reach the logs), with its route, request id and duration
	// in milliseconds.
	resp.Body.Close()
	line := `"path":"/v1/rooms/` + room.ID + `/events","route":"streamRoomEvents","status":200,"duration_ms":`
	deadline := time.Now().Add(wait)
	for !strings.Contains(r.Log(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for the stream:\n%s", r.Log())
		}
		time.Sleep(20 * time.Millisecond) // poll the replica's log
	}
	if strings.Contains(r.Log(), alice.Token) || strings.Contains(r.Log(), "access_token") {
		t.Fatal("the replica logged an access token")
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || !strings.Contains(r.Log(), line) || !strings.Contains(r.Log(), `"request_id":"`+id+`"`) {
		t.Fatalf("stream's request id %q not in the log:\n%s", id, r.Log())
	}
}

// TestStreamAuth: the Authorization header wins over access_token; bad or
// missing tokens are 401 with WWW-Authenticate before any stream starts.
func TestStreamAuth(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	alice := e2e.MustRegister(t, r.URL, "alice")
	room := alice.MustCreateRoom(t, "general", chat.Public)
	path := "/v1/rooms/" + room.ID + "/events"
	tests := []struct {
		name   string
		header string
		query  string
		want   int
	}{
		{"HeaderOnly", "Bearer " + alice.Token, "", http.StatusOK},
		{"QueryOnly", "", "access_token=" + alice.Token, http.StatusOK},
		{"BadHeaderWinsOverGoodQuery", "Bearer nope", "access_token=" + alice.Token, http.StatusUnauthorized},
		{"GoodHeaderWinsOverBadQuery", "Bearer " + alice.Token, "access_token=nope", http.StatusOK},
		{"None", "", "", http.StatusUnauthorized},
		{"BadQuery", "", "access_token=nope", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL+path+"?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("401 without WWW-Authenticate: Bearer")
			}
		})
	}
}
