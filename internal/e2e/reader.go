package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/api"
)

// API returns the Go client (package api) for the client's user, holding
// a copy of its session: the client refreshes it on its own, so a test
// should not refresh the same session through c as well.
func (c *Client) API(tb testing.TB) *api.API {
	tb.Helper()
	var s api.Session
	b, err := json.Marshal(c.Session)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		tb.Fatalf("convert the session: %v", err)
	}
	hc := c.httpClient()
	a, err := api.New(c.Base, api.NewSessionTokens(c.Base, s, hc, nil), api.WithHTTPClient(hc))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// Reader runs a stream reader from package api (api.Stream.Events) in a
// goroutine of its own, for tests to await its events with a timeout. It
// is stopped, and waited for, when the test ends.
type Reader struct {
	Stream *api.Stream
	// Events are the durable events, ready and reauth read, in order;
	// Signals the ephemeral ones (typing, member.read, presence), which
	// interleave with them at any time after ready. Both are closed when
	// reading stopped.
	Events  chan api.Event
	Signals chan api.Event
	// Reconnects receives the reason of every reconnection.
	Reconnects chan error
	cancel     context.CancelFunc
	done       chan struct{}
	err        error
}

// Read starts reading the room stream of roomID, or the user stream when
// roomID is "", through a, from opts.After.
func Read(tb testing.TB, a *api.API, roomID string, opts api.StreamOptions) *Reader {
	tb.Helper()
	r := &Reader{Events: make(chan api.Event, 100000), Signals: make(chan api.Event, 100000), Reconnects: make(chan error, 1000), done: make(chan struct{})}
	opts.OnReconnect = func(err error, _ time.Duration) {
		select {
		case r.Reconnects <- err:
		default:
		}
	}
	if roomID == "" {
		r.Stream = a.UserStream(opts)
	} else {
		r.Stream = a.RoomStream(roomID, opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		defer close(r.Events)
		defer close(r.Signals)
		for ev, err := range r.Stream.Events(ctx) {
			if err != nil {
				r.err = err
				return
			}
			if ephemeral(ev.Type) {
				r.Signals <- ev
				continue
			}
			r.Events <- ev
		}
	}()
	tb.Cleanup(r.Stop)
	return r
}

// Stop ends the reader's context and waits until it returned.
func (r *Reader) Stop() {
	r.cancel()
	<-r.done
}

// Err is the error reading ended with, once Events is closed.
func (r *Reader) Err() error {
	<-r.done
	return r.err
}

// Next returns the next event, failing the test if none comes within d or
// reading stops.
func (r *Reader) Next(tb testing.TB, d time.Duration) api.Event {
	tb.Helper()
	select {
	case ev, ok := <-r.Events:
		if !ok {
			tb.Fatalf("reading stopped: %v", r.Err())
		}
		return ev
	case <-time.After(d):
		tb.Fatalf("no event within %s", d)
	}
	return api.Event{}
}

// UntilReady reads events up to and including ready and returns those
// before it.
func (r *Reader) UntilReady(tb testing.TB, d time.Duration) []api.Event {
	tb.Helper()
	var evs []api.Event
	for {
		ev := r.Next(tb, d)
		if ev.Type == api.EventReady {
			return evs
		}
		evs = append(evs, ev)
	}
}

// WaitEnd waits until reading stops by itself and returns the events read
// until then and the error it stopped with.
func (r *Reader) WaitEnd(tb testing.TB, d time.Duration) ([]api.Event, error) {
	tb.Helper()
	var evs []api.Event
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-r.Events:
			if !ok {
				return evs, r.Err()
			}
			evs = append(evs, ev)
		case <-timeout:
			tb.Fatalf("still reading after %s", d)
		}
	}
}

// NextReconnect returns the reason of the next reconnection, failing the
// test if none comes within d.
func (r *Reader) NextReconnect(tb testing.TB, d time.Duration) error {
	tb.Helper()
	select {
	case err := <-r.Reconnects:
		return err
	case <-time.After(d):
		tb.Fatalf("no reconnection within %s", d)
	}
	return nil
}

// Balancer is an http.RoundTripper in front of replicas, as a load
// balancer would be: it sends each request to the first replica that
// accepts the connection, so a client keeps one URL while replicas go.
type Balancer struct {
	mu       sync.Mutex
	replicas []*Replica
	next     http.RoundTripper
}

// NewBalancer balances over replicas.
func NewBalancer(replicas ...*Replica) *Balancer {
	return &Balancer{replicas: replicas, next: http.DefaultTransport}
}

// Client is an http.Client through the balancer.
func (b *Balancer) Client() *http.Client { return &http.Client{Transport: b} }

// URL is the URL to give clients of the balancer: that of its first
// replica, whose host it replaces as needed.
func (b *Balancer) URL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.replicas[0].URL
}

// RoundTrip tries the replicas in order until one answers.
func (b *Balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	replicas := append([]*Replica(nil), b.replicas...)
	b.mu.Unlock()
	var last error
	for _, r := range replicas {
		select {
		case <-r.Exited():
			continue
		default:
		}
		out := req.Clone(req.Context())
		u, err := out.URL.Parse(r.URL)
		if err != nil {
			return nil, err
		}
		out.URL.Scheme, out.URL.Host, out.Host = u.Scheme, u.Host, ""
		if req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		resp, err := b.next.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		last = err
	}
	return nil, last
}
