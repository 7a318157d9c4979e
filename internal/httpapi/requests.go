package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/logs"
)

// Observer hears about finished requests and ended streams, for metrics. Its
// methods must be cheap and safe for concurrent use.
type Observer interface {
	// Request reports a finished request: its route (an operation id or
	// a fixed name, see routes.go), status and duration. For a stream the
	// duration is the stream's life.
	Request(route string, status int, d time.Duration, stream bool)
	// StreamEnded reports why a stream ended.
	StreamEnded(reason chat.StreamEnd)
}

type nopObserver struct{}

func (nopObserver) Request(string, int, time.Duration, bool) {}
func (nopObserver) StreamEnded(chat.StreamEnd)               {}

// RequestIDHeader carries each request's id: taken from the request when it
// is well-formed, else generated; always sent back.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id.
const maxRequestIDLen = 64

// requestInfo is what the layers of one request learn about it.
type requestInfo struct {
	id     string
	route  string
	stream bool
	// streamEnd is why a stream ended, set by the stream.
	streamEnd chat.StreamEnd
	// finish logs the request and reports it, with its status, once it
	// is over: when the handler returns, or, for a stream that detached
	// from its handler (detached set, see detach.go), when the stream
	// ends. It holds nothing of the request but its method and path.
	finish   func(status int)
	detached bool
}

type requestInfoKey struct{}

func requestInfoOf(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// requestID is the incoming id when it is short and made of [A-Za-z0-9._-],
// else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); id != "" && len(id) <= maxRequestIDLen && wellFormedID(id) {
		return id
	}
	return rand.Text()
}

func wellFormedID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// requests gives each request its id, logs it when it ends (method, path,
// never the query, which may hold an access token; route, status and
// duration; for a stream, why it ended) and reports it to the observer. Every line logged with the
// request's context carries request_id (see requestIDHandler).
func (s *Server) requests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: requestID(r), route: routeUnmatched}
		w.Header().Set(RequestIDHeader, info.id)
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		// A copy of the path: the original holds on to the request line,
		// query and all, for as long as a detached stream runs.
		method, path := r.Method, strings.Clone(r.URL.Path)
		logCtx := context.WithValue(context.Background(), requestInfoKey{}, info)
		info.finish = func(status int) { s.finishRequest(logCtx, info, method, path, start, status) }
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if !info.detached {
			info.finish(sw.status)
		}
	})
}

// finishRequest logs a request that is over and reports it.
func (s *Server) finishRequest(ctx context.Context, info *requestInfo, method, path string, start time.Time, status int) {
	d := time.Since(start)
	s.Observer.Request(info.route, status, d, info.stream)
	level := slog.LevelInfo
	switch info.route {
	case routeHealthz, routeReadyz, routeMetrics:
		level = slog.LevelDebug // probes and scrapes would drown the log
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("path", path),
		slog.String("route", info.route),
		slog.Int("status", status),
		logs.Millis("duration", d),
	}
	if info.streamEnd != "" {
		s.Observer.StreamEnded(info.streamEnd)
		attrs = append(attrs, slog.String("stream_end", string(info.streamEnd)))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// statusWriter records the status; Unwrap lets http.ResponseController
// (and so Huma and the streams) flush and set deadlines through it.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestIDHandler adds the request's id to every record logged with its
// context.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if info := requestInfoOf(ctx); info != nil {
		rec.AddAttrs(slog.String("request_id", info.id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
