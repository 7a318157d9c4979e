package accounts

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/e2e"
)

// TestCORS: PARLEY_CORS_ORIGINS lets a browser app on an allowed origin
// preflight and read the API; other origins get no CORS headers, and their
// preflights 204 (not 405) so browsers report a CORS refusal.
func TestCORS(t *testing.T) {
	c := e2e.NewCluster(t, "PARLEY_CORS_ORIGINS=https://app.example, https://admin.example")
	r := c.MustStart(t)
	tests := []struct {
		name, method, origin, allow string
		status                      int
	}{
		{"Preflight", http.MethodOptions, "https://app.example", "https://app.example", http.StatusNoContent},
		{"SecondOrigin", http.MethodOptions, "https://admin.example", "https://admin.example", http.StatusNoContent},
		{"PreflightOtherOrigin", http.MethodOptions, "https://evil.example", "", http.StatusNoContent},
		// Even a refused request is readable by the allowed origin.
		{"Request", http.MethodPost, "https://app.example", "https://app.example", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, r.URL+"/v1/auth/login", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tt.origin)
			if tt.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			} else {
				req.Header.Set("Content-Type", "application/json")
				req.Body = http.NoBody
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.allow {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tt.allow)
			}
			if tt.allow == "" {
				for name := range resp.Header {
					if strings.HasPrefix(name, "Access-Control-") {
						t.Errorf("%s set for an origin that is not allowed", name)
					}
				}
			}
		})
	}
}

// TestPreflightWithoutOrigins: with no PARLEY_CORS_ORIGINS, a preflight
// answers 204 with no Access-Control-* headers (the browser then refuses
// the call as a CORS error), not 405.
func TestPreflightWithoutOrigins(t *testing.T) {
	_, r := MustServe(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, r.URL+"/v1/rooms", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	for name := range resp.Header {
		if strings.HasPrefix(name, "Access-Control-") {
			t.Errorf("%s set with no origins configured", name)
		}
	}
}
