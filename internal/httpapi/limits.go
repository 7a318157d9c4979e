package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/limits"
)

type clientIPKey struct{}

// withClientIP puts the request's client address (see limits.Proxies) into
// its context, for the failed-login limits.
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := s.Proxies.ClientIP(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
	})
}

// clientIP is the request's client address.
func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// streamSlot takes a stream slot for userID under the replica's caps; a
// refusal is the problem to answer (429 or 503, with Retry-After).
func (s *Server) streamSlot(ctx context.Context, userID string) (*limits.StreamSlot, error) {
	if s.Streams == nil {
		return &limits.StreamSlot{}, nil
	}
	slot, err := s.Streams.Acquire(userID)
	if err != nil {
		return nil, s.problem(ctx, err)
	}
	return slot, nil
}

// streamLimitDocs are what a stream's 429 and 503 mean.
var streamLimitDocs = map[string]string{
	"429": "The caller has as many streams open on this replica as it may (PARLEY_STREAMS_PER_USER); a ticket is " +
		"left unused. Close a stream, or wait Retry-After seconds, then retry: on this replica, or on another, whose " +
		"count is its own.",
	"503": "This replica serves as many streams as it may (PARLEY_MAX_STREAMS), or the database is unavailable or did " +
		"not answer in time; a ticket is left unused. Wait Retry-After seconds and retry, on this or another replica.",
}

// limitDocs says what a 429 or 503 of an operation means, where it is more
// than the generic text.
var limitDocs = map[string]map[string]string{
	"login": {
		"429": "Too many failed logins for this username (from this address, or from all together): even the right password " +
			"is refused until the window ends. Wait Retry-After seconds.",
		"503": "Too many password checks in progress on this replica, or the database is unavailable or did not answer " +
			"in time. Wait Retry-After seconds and retry.",
	},
	"register": {
		"503": "Too many password hashes in progress on this replica (nothing was stored), or the database is unavailable " +
			"or did not answer in time (the account may or may not have been created: a retry answered 409 means it was, " +
			"and the password logs in). Wait Retry-After seconds and retry.",
	},
	"streamRoomEvents": streamLimitDocs,
	"streamUserEvents": streamLimitDocs,
	"postMessage": {
		"429": "Over the write limit (posts, edits, deletes and reactions per user; refused writes count too, a repeated " +
			"client_id does not). Nothing was stored. Wait Retry-After seconds, then retry with the same client_id.",
	},
}

// documentRetryAfter documents the Retry-After header on every 429 and 503
// answer of op, with what the client should do.
func documentRetryAfter(_ *huma.OpenAPI, op *huma.Operation) {
	for code, resp := range op.Responses {
		var generic string
		switch code {
		case "429":
			generic = "A limit refused the request; nothing was stored. Wait Retry-After seconds, then retry."
		case "503":
			generic = "The replica is at capacity, or the database is unavailable or did not answer in time. A write " +
				"answered 503 may or may not have been stored: wait Retry-After seconds, then retry it (a post with the " +
				"same client_id, which stores it at most once)."
		case "408":
			resp.Description = "The request body did not arrive within the server's read bound (PARLEY_READ_TIMEOUT); " +
				"the connection is closed. Nothing was stored."
			continue
		default:
			continue
		}
		resp.Description = generic
		if d := limitDocs[op.OperationID][code]; d != "" {
			resp.Description = d
		}
		if resp.Headers == nil {
			resp.Headers = map[string]*huma.Param{}
		}
		one := 1.0
		resp.Headers["Retry-After"] = &huma.Param{
			Description: "Whole seconds to wait before retrying; at least 1.",
			Schema:      &huma.Schema{Type: huma.TypeInteger, Minimum: &one, Examples: []any{2}},
		}
	}
}
