package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

// retryAfterSeconds is what 503 answers suggest clients wait when the
// error names no wait of its own.
const retryAfterSeconds = 2

var codeStatus = map[chat.Code]int{
	chat.ENotFound:        http.StatusNotFound,
	chat.EForbidden:       http.StatusForbidden,
	chat.EUnauthenticated: http.StatusUnauthorized,
	chat.EConflict:        http.StatusConflict,
	chat.EInvalid:         http.StatusUnprocessableEntity,
	chat.EUnavailable:     http.StatusServiceUnavailable,
	chat.ETooMany:         http.StatusTooManyRequests,
}

// problem turns any error from a service into a Huma error. It is the one
// place errors become responses: chat errors map to their status with their
// client-safe message; anything else is logged and becomes a bare 500, so
// no pgx or internal text reaches a client.
func (s *Server) problem(ctx context.Context, err error) error {
	var ce *chat.Error
	status, ok := 0, errors.As(err, &ce)
	if ok {
		status, ok = codeStatus[ce.Code]
	}
	if (!ok || status >= 500) && ctx.Err() != nil {
		// The client went away (or the server is shutting down) while
		// the request waited: nobody reads this answer, and neither the
		// database nor Parley failed.
		s.log.DebugContext(ctx, "request canceled", "err", err)
		return huma.NewError(499, "request canceled")
	}
	if !ok {
		s.log.ErrorContext(ctx, "request failed", "err", err)
		return huma.NewError(http.StatusInternalServerError, "internal error")
	}
	if ce.Err != nil && status >= 500 {
		s.log.WarnContext(ctx, "dependency unavailable", "err", ce.Err)
	}
	var details []error
	if ce.Field != "" {
		details = append(details, &huma.ErrorDetail{Message: ce.Message, Location: ce.Field})
	}
	return withStatusHeaders(huma.NewError(status, ce.Message, details...), status, ce.RetryAfter)
}

// withStatusHeaders adds the headers the contract ties to a status;
// retryAfter (0: the default) goes into Retry-After.
func withStatusHeaders(err error, status int, retryAfter time.Duration) error {
	switch status {
	case http.StatusUnauthorized:
		return huma.ErrorWithHeaders(err, http.Header{"WWW-Authenticate": {`Bearer realm="parley"`}})
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		return huma.ErrorWithHeaders(err, http.Header{"Retry-After": {retryAfterHeader(retryAfter)}})
	}
	return err
}

// retryAfterHeader is d in whole seconds, rounded up and at least 1, so a
// client that waits it out is past the limit; 0 is the default wait.
func retryAfterHeader(d time.Duration) string {
	if d <= 0 {
		return strconv.Itoa(retryAfterSeconds)
	}
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// writeProblem writes an RFC 9457 problem outside Huma's operations (the
// router's catch-all and the raw-body checks).
func writeProblem(w http.ResponseWriter, status int, detail string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail})
}
