package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseAPI(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"http://localhost:8080", "http://localhost:8080", true},
		{"https://chat.example.com/", "https://chat.example.com", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"localhost:8080", "", false},
		{"ftp://example.com", "", false},
		{"http://", "", false},
		{"http://example.com/v1", "", false},
		{"http://example.com/?x=1", "", false},
		{"http://user:pw@example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAPI(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseAPI(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	h, err := Handler("http://127.0.0.1:8080/")
	if err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, method, path string) (*http.Response, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		resp := rec.Result()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("Page", func(t *testing.T) {
		resp, body := get(t, http.MethodGet, "/")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range []string{"<html", `<meta name="parley-api" content="http://127.0.0.1:8080">`, `rel="icon" href="data:image/svg+xml`, `<script type="module" src="app.js">`} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks %s", want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"connect-src 'self' http://127.0.0.1:8080", "script-src 'self'", "img-src 'self' data:"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
	})
	t.Run("Modules", func(t *testing.T) {
		for _, path := range []string{"/app.js", "/api.js", "/stream.js"} {
			resp, body := get(t, http.MethodGet, path)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || body == "" {
				t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
		resp, _ := get(t, http.MethodGet, "/style.css")
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
			t.Errorf("style.css: %q", resp.Header.Get("Content-Type"))
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		if resp, _ := get(t, http.MethodGet, "/nope.js"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /nope.js: %d", resp.StatusCode)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		resp, _ := get(t, http.MethodPost, "/")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("POST /: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
	t.Run("BadAPI", func(t *testing.T) {
		if _, err := Handler("not a url"); err == nil {
			t.Fatal("Handler accepted a bad API URL")
		}
	})
}
