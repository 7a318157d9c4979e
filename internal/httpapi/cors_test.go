package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		name       string
		origins    []string
		method     string
		origin     string
		preflight  bool
		wantStatus int
		wantAllow  string
	}{
		{"NoneConfigured", nil, http.MethodGet, "https://app.example", false, http.StatusTeapot, ""},
		{"Allowed", []string{"https://app.example"}, http.MethodGet, "https://app.example", false, http.StatusTeapot, "https://app.example"},
		{"OtherOrigin", []string{"https://app.example"}, http.MethodGet, "https://evil.example", false, http.StatusTeapot, ""},
		{"NoOrigin", []string{"https://app.example"}, http.MethodGet, "", false, http.StatusTeapot, ""},
		{"Any", []string{"*"}, http.MethodGet, "https://x.example", false, http.StatusTeapot, "https://x.example"},
		{"Preflight", []string{"https://app.example"}, http.MethodOptions, "https://app.example", true, http.StatusNoContent, "https://app.example"},
		// Refused preflights answer 204 without CORS headers, as the
		// contract says, never a 405.
		{"PreflightOtherOrigin", []string{"https://app.example"}, http.MethodOptions, "https://evil.example", true, http.StatusNoContent, ""},
		{"PreflightNoneConfigured", nil, http.MethodOptions, "https://app.example", true, http.StatusNoContent, ""},
		{"PlainOptions", []string{"https://app.example"}, http.MethodOptions, "https://app.example", false, http.StatusTeapot, "https://app.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/v1/rooms", nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.preflight {
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			}
			rec := httptest.NewRecorder()
			cors(tt.origins, ok).ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Fatalf("Allow-Origin %q, want %q", got, tt.wantAllow)
			}
			if tt.preflight && tt.wantAllow != "" && rec.Header().Get("Access-Control-Allow-Headers") == "" {
				t.Fatal("preflight without Allow-Headers")
			}
			if tt.wantAllow == "" {
				for name := range rec.Header() {
					if strings.HasPrefix(name, "Access-Control-") {
						t.Errorf("%s set for an origin that is not allowed", name)
					}
				}
			}
		})
	}
}
