package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// Route names for what is not a Huma operation. With the operations' ids
// they are the fixed set of values the request metrics and the access log
// name requests by: never a raw path.
const (
	routeHealthz   = "healthz"
	routeReadyz    = "readyz"
	routeMetrics   = "metrics"
	routeRoot      = "root"
	routeOpenAPI   = "openapi" // the OpenAPI documents, in every format
	routeDocs      = "docs"
	routeSchemas   = "schemas"
	routePreflight = "preflight" // a CORS preflight from an allowed origin
	routeUnmatched = "unmatched" // no route: 404, 405, or refused before routing
)

// router is the Huma adapter over http.ServeMux (humago's, plus naming):
// every route it registers names its requests, so the names are exactly the
// registered operations and new operations are covered without a list to
// keep up to date. Huma operations read their body through checkBody.
type router struct {
	mux *http.ServeMux
	// readTimeout bounds each operation's body read (0: unbounded).
	readTimeout time.Duration
}

func newRouter(readTimeout time.Duration) *router {
	return &router{mux: http.NewServeMux(), readTimeout: readTimeout}
}

// Handle registers a Huma operation (or one of Huma's own routes: the
// OpenAPI documents, docs and schemas, which have no operation id).
func (rt *router) Handle(op *huma.Operation, handler func(huma.Context)) {
	name := op.OperationID
	if name == "" {
		name = hostedName(op.Path)
	}
	h := checkBody(rt.readTimeout, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(humago.NewContext(op, r, w))
	}))
	rt.mux.Handle(strings.ToUpper(op.Method)+" "+op.Path, named(name, isStream(op), h))
}

// handle registers a plain handler under a fixed route name.
func (rt *router) handle(pattern, name string, h http.HandlerFunc) {
	rt.mux.Handle(pattern, named(name, false, h))
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// hostedName names one of the routes Huma registers itself.
func hostedName(path string) string {
	switch {
	case strings.HasPrefix(path, "/docs"):
		return routeDocs
	case strings.HasPrefix(path, "/schemas"):
		return routeSchemas
	default:
		return routeOpenAPI
	}
}

// isStream reports whether op answers with an event stream: its requests
// last as long as the stream, so they stay out of the latency histogram.
func isStream(op *huma.Operation) bool {
	for _, resp := range op.Responses {
		if resp != nil && resp.Content["text/event-stream"] != nil {
			return true
		}
	}
	return false
}

// named records the route's name in the request's info for the access log
// and the metrics.
func named(name string, stream bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := requestInfoOf(r.Context()); info != nil {
			info.route, info.stream = name, stream
		}
		next.ServeHTTP(w, r)
	})
}
