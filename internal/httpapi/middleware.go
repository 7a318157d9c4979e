package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
)

const bearerScheme = "bearer"

type principalKey struct{}

// principal is the authenticated caller; operations with security always
// have one (the middleware answered 401 otherwise).
func principal(ctx context.Context) chat.Principal {
	p, _ := ctx.Value(principalKey{}).(chat.Principal)
	return p
}

// allowQueryToken marks operations that may take the access token from
// ?access_token=, or a stream ticket from ?ticket= (which wins over it),
// for browser EventSource, which cannot set headers.
const allowQueryToken = "parley-allow-query-token"

// authenticate checks the bearer token of operations that need one and puts
// the caller into the context. The Authorization header wins over
// ?ticket=, which wins over ?access_token=.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	o := ctx.Operation()
	if len(o.Security) == 0 {
		next(ctx)
		return
	}
	token, ok := "", false
	if h := ctx.Header("Authorization"); h != "" {
		scheme, rest, found := strings.Cut(h, " ")
		if found && strings.EqualFold(scheme, "Bearer") {
			token, ok = strings.TrimSpace(rest), true
		}
		if !ok {
			s.unauthorized(ctx, "Authorization must be \"Bearer <access_token>\"")
			return
		}
	} else if o.Metadata[allowQueryToken] == true {
		if ticket := ctx.Query("ticket"); ticket != "" {
			s.authenticateTicket(ctx, ticket, next)
			return
		}
		token = ctx.Query("access_token")
		ok = token != ""
	}
	if !ok {
		s.unauthorized(ctx, "missing access token")
		return
	}
	if s.Accounts == nil {
		s.unauthorized(ctx, "authentication unavailable")
		return
	}
	p, err := s.Accounts.Authenticate(ctx.Context(), token)
	if err != nil {
		s.unauthorized(ctx, chatMessage(err))
		return
	}
	next(huma.WithValue(ctx, principalKey{}, p))
}

func (s *Server) unauthorized(ctx huma.Context, msg string) {
	ctx.SetHeader("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
	_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, msg)
}

// checkBody reads request bodies up to maxBodyBytes and refuses one that is
// larger (413) or not valid UTF-8 (400): encoding/json would otherwise turn
// bad bytes into U+FFFD silently and store them. It also refuses bodies
// nested deeper than maxBodyDepth (400), before anything decodes them.
//
// The read must end within readTimeout (when positive), or the request is
// answered 408 and its connection closed: a client trickling its body a
// byte at a time holds a connection and a goroutine no longer than that.
// The deadline is set on the connection around the read and cleared after,
// since http.Server.ReadTimeout would also end every stream at its
// deadline.
func checkBody(readTimeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		bounded := readTimeout > 0 && rc.SetReadDeadline(time.Now().Add(readTimeout)) == nil
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if bounded {
			_ = rc.SetReadDeadline(time.Time{})
		}
		if status, detail := bodyVerdict(body, err); status != 0 {
			if status == http.StatusRequestTimeout {
				w.Header().Set("Connection", "close")
			}
			writeProblem(w, status, detail)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// bodyVerdict judges a request body read with err: the status and detail
// of its refusal, or 0 when it may be decoded.
func bodyVerdict(body []byte, err error) (int, string) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, "request body is larger than 64 KiB"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, "request body was not received in time"
	case err != nil:
		return http.StatusBadRequest, "could not read the request body"
	case !utf8.Valid(body):
		return http.StatusBadRequest, "request body is not valid UTF-8"
	case hasLoneSurrogate(body):
		return http.StatusBadRequest, "request body escapes a lone UTF-16 surrogate, which is not a character"
	case jsonDepth(body, maxBodyDepth) > maxBodyDepth:
		return http.StatusBadRequest, "request body nests deeper than " + strconv.Itoa(maxBodyDepth) + " levels"
	}
	return 0, ""
}

// notFoundOrNotAllowed answers what the mux has no operation for: 405 with
// Allow when the path exists for other methods, else 404, both as problems.
func notFoundOrNotAllowed(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here")
		return
	}
	writeProblem(w, http.StatusNotFound, "no such endpoint")
}

// recoverer turns a panic into a logged 500 so no request can crash the
// process.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				// The path only: the query may hold an access token.
				s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeProblem(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// hasLoneSurrogate reports whether a JSON text escapes half a UTF-16
// surrogate pair (\ud800 alone, say): encoding/json would store it as
// U+FFFD, not as posted. Backslashes occur only inside JSON strings, so a
// scan of the escapes is enough.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		i++ // the escaped character
		r, ok := hexRune(b, i)
		if !ok {
			continue
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low half with no high half before it
		case r >= 0xD800 && r <= 0xDBFF:
			i += 4
			if i+1 >= len(b) || b[i+1] != '\\' {
				return true
			}
			low, ok := hexRune(b, i+2)
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 6
		default:
			i += 4
		}
	}
	return false
}

// hexRune parses the four hex digits after the 'u' at b[i]; i may be past
// the end (a body ending in a backslash after a high surrogate).
func hexRune(b []byte, i int) (rune, bool) {
	if i+4 >= len(b) || b[i] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[i+1 : i+5] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
