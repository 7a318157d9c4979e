package monitoring

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/e2e"
)

// TestRequestIDs: every response, problems included, carries X-Request-Id:
// the caller's when it is well-formed and short, else a new one; the
// request's log line carries the same id and its duration in milliseconds.
func TestRequestIDs(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"Kept", "req-42.a_B", true},
		{"UUIDKept", "3c6ffe44-5deb-4fa9-acae-8f368fd14d20", true},
		{"None", "", false},
		{"TooLong", strings.Repeat("a", 65), false},
		{"BadCharacters", "id with spaces", false},
		{"Injection", `x","level":"ERROR`, false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.URL+"/v1/rooms", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.sent != "" {
				req.Header.Set("X-Request-Id", tt.sent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want a 401 problem", resp.StatusCode)
			}
			id := resp.Header.Get("X-Request-Id")
			switch {
			case tt.kept && id != tt.sent:
				t.Fatalf("X-Request-Id %q, want the caller's %q", id, tt.sent)
			case !tt.kept && (id == tt.sent || len(id) < 16 || seen[id]):
				t.Fatalf("X-Request-Id %q for %q, want a new unique id", id, tt.sent)
			}
			seen[id] = true
			line := `"route":"listRooms","status":401,"duration_ms":`
			// The line is written just after the response: poll the log.
			deadline := time.Now().Add(wait)
			for {
				for _, l := range strings.Split(r.Log(), "\n") {
					if strings.Contains(l, `"request_id":"`+id+`"`) {
						if !strings.Contains(l, line) {
							t.Fatalf("log line for %s lacks %s: %s", id, line, l)
						}
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no log line with request_id %q:\n%s", id, r.Log())
				}
				time.Sleep(20 * time.Millisecond) // poll the replica's log
			}
		})
	}
}
