// Package httpapi serves Parley's HTTP API with Huma: the account, room and
// message operations, the SSE room streams, authentication middleware, the
// operational endpoints, and the mapping of chat errors to RFC 9457 problems.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/limits"
)

// maxBodyBytes bounds every request body; the largest valid one (a message
// of 4000 four-byte characters, JSON-escaped) is well below it.
const maxBodyBytes = 64 << 10

// Options configures a Server. The services may be nil when the server is
// built only to describe the API (parley openapi).
type Options struct {
	Accounts chat.AccountService
	Rooms    chat.RoomService
	// Subscriber and Events serve the room streams, UserFeeds the user
	// stream, whose cursors Cursors decodes (with the same key on every
	// replica).
	Subscriber chat.Subscriber
	Events     chat.EventLog
	UserFeeds  chat.UserFeeds
	Cursors    *chat.CursorCodec
	// Tickets mints and checks the stream tickets both streams accept.
	Tickets chat.StreamTickets
	// Signals announces typing to every replica's streams.
	Signals chat.Signaler
	// Ready reports whether this replica can serve: the database answers and
	// the listener is connected.
	Ready func(ctx context.Context) error
	// CORSOrigins are the browser origins allowed to call the API ("*":
	// any); none by default.
	CORSOrigins []string
	// Metrics serves /metrics (404 when nil).
	Metrics http.Handler
	// Observer hears about requests and streams, for metrics.
	Observer Observer
	// Proxies are the trusted reverse proxies, for client addresses.
	Proxies limits.Proxies
	// Streams caps the open streams (nil: no caps).
	Streams   *limits.Streams
	Heartbeat time.Duration
	// ReadTimeout bounds the read of each request's body, so a client
	// trickling one is cut off (408) without a server-wide ReadTimeout,
	// which would end the streams too. 0: unbounded.
	ReadTimeout time.Duration
	// Version is the build's version, shown by /healthz.
	Version string
	Logger  *slog.Logger
}

// Server is Parley's HTTP API.
type Server struct {
	Options
	log     *slog.Logger
	api     huma.API
	handler http.Handler
	// detachedStreams are the streams running off their handlers.
	detachedStreams detachedStreams
}

// New builds the API and registers every operation.
func New(opts Options) *Server {
	s := &Server{Options: opts}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s.log = slog.New(requestIDHandler{opts.Logger.Handler()})
	if s.Observer == nil {
		s.Observer = nopObserver{}
	}
	if s.Heartbeat <= 0 {
		s.Heartbeat = 15 * time.Second
	}
	rt := newRouter(opts.ReadTimeout)
	s.api = huma.NewAPI(apiConfig(), rt)
	s.api.UseMiddleware(s.authenticate)
	s.registerAccounts()
	s.registerRooms()
	s.registerMessages()
	s.registerConversations()
	s.registerStream()
	s.registerUserStream()
	s.registerTickets()
	s.registerTyping()
	describeProblems(s.api.OpenAPI())
	rt.handle("GET /healthz", routeHealthz, s.healthz)
	rt.handle("GET /readyz", routeReadyz, s.readyz)
	if s.Metrics != nil {
		rt.handle("GET /metrics", routeMetrics, s.Metrics.ServeHTTP)
	}
	rt.handle("GET /{$}", routeRoot, root)
	rt.handle("/", routeUnmatched, func(w http.ResponseWriter, r *http.Request) { notFoundOrNotAllowed(rt.mux, w, r) })
	s.handler = s.requests(s.recoverer(cors(opts.CORSOrigins, s.withClientIP(refuseDotKeys(rt)))))
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// OpenAPI is the API's OpenAPI 3.1 document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

func apiConfig() huma.Config {
	cfg := huma.DefaultConfig("Parley", "1.0.0")
	cfg.Info.Description = "Parley is a multi-room, authenticated chat API. Rooms have members and a gap-free " +
		"per-room event log (`seq`); every room has a live Server-Sent-Events stream.\n\n" +
		"Errors are RFC 9457 `application/problem+json`. 401 answers carry `WWW-Authenticate: Bearer`; " +
		"429 and 503 answers carry `Retry-After`. Every response carries `X-Request-Id` (the caller's, when it is at " +
		"most 64 characters of `[A-Za-z0-9._-]`), which the server's log line for the request also holds."
	cfg.Info.License = &huma.License{Name: "Apache-2.0", URL: "https://www.apache.org/licenses/LICENSE-2.0"}
	// Relative: the document is served by the API it describes, wherever
	// that is deployed (make run: http://localhost:8080).
	cfg.Servers = []*huma.Server{{URL: "/", Description: "the server this document was fetched from"}}
	// Without the $schema link generated clients grow a useless field.
	cfg.CreateHooks = nil
	// Error bodies never echo secrets, long values or nested structures.
	cfg.Transformers = append(cfg.Transformers, boundEchoes)
	cfg.OnAddOperation = append(cfg.OnAddOperation, documentRetryAfter)
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		bearerScheme: {Type: "http", Scheme: "bearer", BearerFormat: "JWT",
			Description: "An access token from register, login or refresh."},
	}
	return cfg
}

// describeProblems makes the problem schema say what is sent: no response
// carries type, so its default (about:blank) must not be in the schema,
// where generators would make it a required field.
func describeProblems(doc *huma.OpenAPI) {
	m := doc.Components.Schemas.Map()["ErrorModel"]
	if m == nil || m.Properties["type"] == nil {
		return
	}
	t := m.Properties["type"]
	t.Default, t.Examples = nil, nil
	t.Description = "Not sent by Parley: absent means about:blank (RFC 9457)."
}

// healthz is liveness: 200 while the process runs, with the version.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}{"ok", s.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "not ready: "+chatMessage(err))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// root answers GET / with where to go next: the API is described at
// /docs (for people) and /openapi.yaml (for generators), and serves no
// pages of its own. The Link header says the same for tools (RFC 8631).
func root(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Link", `</docs>; rel="service-doc", </openapi.yaml>; rel="service-desc"`)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"name":"Parley","docs":"/docs","openapi":"/openapi.yaml","api":"/v1"}`+"\n")
}

// chatMessage is the client-safe text of err.
func chatMessage(err error) string {
	var ce *chat.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return "unavailable"
}

// op fills in what every operation shares: its tag, the body limit and the
// errors any operation can answer.
func op(id, method, path, summary, tag string, status int, errs ...int) huma.Operation {
	// Any operation may find the database unavailable or too slow (503),
	// and one that takes a body (and so may answer 413) may find the body
	// too slow to arrive (408).
	if slices.Contains(errs, http.StatusRequestEntityTooLarge) && !slices.Contains(errs, http.StatusRequestTimeout) {
		errs = append(errs, http.StatusRequestTimeout)
	}
	if !slices.Contains(errs, http.StatusServiceUnavailable) {
		errs = append(errs, http.StatusServiceUnavailable)
	}
	slices.Sort(errs)
	return huma.Operation{
		OperationID:   id,
		Method:        method,
		Path:          path,
		Summary:       summary,
		Tags:          []string{tag},
		DefaultStatus: status,
		MaxBodyBytes:  maxBodyBytes,
		Errors:        append(errs, http.StatusInternalServerError),
		// Public unless authed: an empty list says so in the document.
		Security: []map[string][]string{},
	}
}

// authed marks an operation as needing a bearer access token.
func authed(o huma.Operation) huma.Operation {
	o.Security = []map[string][]string{{bearerScheme: {}}}
	o.Errors = append([]int{http.StatusUnauthorized}, o.Errors...)
	return o
}
