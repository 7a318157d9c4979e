package httpapi

import (
	"net/http"
	"slices"
	"strings"
)

// corsMaxAge is how long browsers may cache a preflight answer, in seconds.
const corsMaxAge = "600"

// cors lets browsers on the allowed origins call the API: it answers
// preflight requests and marks responses readable. Credentials are bearer
// tokens, never cookies, so no Allow-Credentials. "*" allows any origin.
//
// Every preflight is answered here with 204: for an origin that is not
// allowed (or with none configured) without Access-Control-* headers, so the
// browser reports a CORS refusal rather than a 405 that sends developers
// looking in the wrong place.
func cors(origins []string, next http.Handler) http.Handler {
	anyOrigin := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && (anyOrigin || slices.Contains(origins, origin))
		h := w.Header()
		if len(origins) > 0 {
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			if info := requestInfoOf(r.Context()); info != nil {
				info.route = routePreflight
			}
			if allowed {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, "+RequestIDHeader)
				h.Set("Access-Control-Max-Age", corsMaxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", strings.Join([]string{"WWW-Authenticate", "Retry-After", "Allow", RequestIDHeader}, ", "))
		}
		next.ServeHTTP(w, r)
	})
}
