// Package monitoring tests what an operator watches: /metrics after real
// traffic, request ids and the access log.
package monitoring

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/chat"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

// wait bounds every wait for a frame or a figure; the box is loaded.
const wait = 10 * time.Second

// Series names used below.
const (
	fannedOut  = "parley_events_fanned_out_total"
	lagCount   = "parley_event_delivery_lag_seconds_count"
	lagSum     = "parley_event_delivery_lag_seconds_sum"
	subs       = "parley_stream_subscribers"
	rooms      = "parley_stream_rooms"
	connected  = "parley_listener_connected"
	reconnects = "parley_listener_reconnects_total"
)

func requests(op string, status int) string {
	return fmt.Sprintf(`parley_http_requests_total{operation="%s",status="%d"}`, op, status)
}

func latency(op, suffix string) string {
	return fmt.Sprintf(`parley_http_request_duration_seconds_%s{operation="%s"}`, suffix, op)
}

func ends(reason chat.StreamEnd) string {
	return fmt.Sprintf(`parley_stream_ends_total{reason="%s"}`, reason)
}

// MustMove polls the replica's /metrics until each series has moved from
// before by exactly its delta (a request is counted just after its response
// is written, so a client can be a moment ahead of the figures), and
// returns that scrape. After wait it reports every series that did not.
func MustMove(tb testing.TB, r *e2e.Replica, before map[string]float64, deltas map[string]float64) map[string]float64 {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		after := r.Metrics(tb)
		var wrong []string
		for series, d := range deltas {
			v, ok := after[series]
			if !ok {
				wrong = append(wrong, series+" missing from /metrics")
			} else if got := v - before[series]; got != d {
				wrong = append(wrong, fmt.Sprintf("%s moved by %v (from %v to %v), want %v", series, got, before[series], v, d))
			}
		}
		if len(wrong) == 0 {
			return after
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s:\n%s", wait, strings.Join(wrong, "\n"))
		}
		time.Sleep(20 * time.Millisecond) // poll /metrics
	}
}

// TestMetrics drives real traffic through a replica and checks that each
// figure moved as it should: requests by operation and status, latency
// histograms that resolve sub-millisecond calls and leave streams out,
// stream and room gauges, fan-out, delivery lag, stream ends by reason, the
// listener, the pool, and the Go runtime and process collectors.
func TestMetrics(t *testing.T) {
	c := e2e.NewCluster(t)
	r := c.MustStart(t)
	before := r.Metrics(t)

	t.Run("Preinitialised", func(t *testing.T) {
		for _, reason := range chat.StreamEnds() {
			if v, ok := before[ends(reason)]; !ok || v != 0 {
				t.Errorf("%s = %v (present %v) at start, want 0", ends(reason), v, ok)
			}
		}
		for series, want := range map[string]float64{connected: 1, reconnects: 0, subs: 0, rooms: 0, fannedOut: 0, lagCount: 0} {
			if v, ok := before[series]; !ok || v != want {
				t.Errorf("%s = %v (present %v) at start, want %v", series, v, ok, want)
			}
		}
	})

	t.Run("Requests", func(t *testing.T) {
		m0 := r.Metrics(t)
		alice := e2e.MustRegister(t, r.URL, "alice")
		anon := &e2e.Client{Base: r.URL}
		anon.Do(t, http.MethodPost, "/v1/auth/login", map[string]string{"username": "alice", "password": "wrong password"}).MustProblem(t, http.StatusUnauthorized)
		anon.Do(t, http.MethodGet, "/v1/me", nil).MustProblem(t, http.StatusUnauthorized)
		alice.Do(t, http.MethodGet, "/v1/me", nil)
		anon.Do(t, http.MethodGet, "/no/such/path", nil).MustProblem(t, http.StatusNotFound)
		anon.Do(t, http.MethodDelete, "/v1/me", nil).MustProblem(t, http.StatusMethodNotAllowed)
		anon.Do(t, http.MethodGet, "/healthz", nil)
		m1 := MustMove(t, r, m0, map[string]float64{
			requests("register", 201):     1,
			requests("login", 401):        1,
			requests("getMe", 401):        1,
			requests("getMe", 200):        1,
			requests("unmatched", 404):    1,
			requests("unmatched", 405):    1,
			requests("healthz", 200):      1,
			latency("register", "count"):  1,
			latency("getMe", "count"):     2,
			latency("unmatched", "count"): 2,
		})
		// The last scrape counted the one before it.
		if m1[requests("metrics", 200)] < 1 {
			t.Errorf("scrapes are not counted: %s = %v", requests("metrics", 200), m1[requests("metrics", 200)])
		}
		// Buckets resolve sub-millisecond calls, and every call falls in
		// one of them.
		for _, le := range []string{"0.0001", "0.00025", "0.0005", "0.001", "10", "+Inf"} {
			series := fmt.Sprintf(`parley_http_request_duration_seconds_bucket{operation="getMe",le="%s"}`, le)
			if _, ok := m1[series]; !ok {
				t.Errorf("%s missing", series)
			}
		}
		if inf, n := m1[`parley_http_request_duration_seconds_bucket{operation="getMe",le="+Inf"}`], m1[latency("getMe", "count")]; inf != n {
			t.Errorf("+Inf bucket %v, count %v", inf, n)
		}
		// Operations are named by id from a fixed set, never by path.
		for series := range m1 {
			if strings.Contains(series, `operation="/`) || strings.Contains(series, "no/such") {
				t.Errorf("series named by a raw path: %s", series)
			}
		}
	})

	t.Run("Streams", func(t *testing.T) {
		alice := e2e.MustLogin(t, r.URL, "alice")
		bob := e2e.MustRegister(t, r.URL, "bob")
		room := alice.MustCreateRoom(t, "general", chat.Public)
		bob.MustJoin(t, room.ID)
		sa := alice.OpenStream(t, room.ID, "", nil)
		sa.UntilReady(t, wait)
		sb := bob.OpenStream(t, room.ID, "", nil)
		sb.UntilReady(t, wait)
		m0 := r.WaitMetric(t, subs, 2, wait)
		if m0[rooms] != 1 {
			t.Errorf("%s = %v with two streams of one room, want 1", rooms, m0[rooms])
		}

		// Three posts to two subscribers: six events queued, and three
		// delivery lags (one per announced event).
		const posts = 3
		for i := range posts {
			alice.MustPost(t, room.ID, fmt.Sprintf("hello %d", i))
		}
		for _, s := range []*e2e.Stream{sa, sb} {
			for range posts {
				if f := s.Next(t, wait); f.Type != "message" {
					t.Fatalf("got %+v, want a message", f)
				}
			}
		}
		m1 := MustMove(t, r, m0, map[string]float64{fannedOut: 2 * posts, lagCount: posts, requests("postMessage", 201): posts})
		// The lag is measured, not faked: it is not negative, and on one
		// machine it is far below the top bucket.
		if d := m1[lagSum] - m0[lagSum]; d < 0 || d > posts*10 {
			t.Errorf("delivery lag sum moved by %v s for %d events", d, posts)
		}
		if inTop := m1[`parley_event_delivery_lag_seconds_bucket{le="10"}`] - m0[`parley_event_delivery_lag_seconds_bucket{le="10"}`]; inTop != posts {
			t.Errorf("%v of %d lags within 10 s", inTop, posts)
		}

		// Bob leaves: his stream ends after his own member.left.
		if resp := bob.Do(t, http.MethodPost, "/v1/rooms/"+room.ID+"/leave", nil); resp.Status != http.StatusNoContent {
			t.Fatalf("leave: %d %s", resp.Status, resp.Body)
		}
		sb.WaitEnd(t, wait)
		r.WaitMetric(t, ends(chat.EndLeft), before[ends(chat.EndLeft)]+1, wait)
		// Alice hangs up.
		sa.Close()
		m2 := MustMove(t, r, m0, map[string]float64{
			subs:                              -2,
			ends(chat.EndClientGone):          1,
			rooms:                             -1,
			requests("streamRoomEvents", 200): 2,
			ends(chat.EndRemoved):             0,
			ends(chat.EndSlowConsumer):        0,
		})
		// Streams stay out of the latency histogram.
		if v, ok := m2[latency("streamRoomEvents", "count")]; ok {
			t.Errorf("streams are in the latency histogram: %s = %v", latency("streamRoomEvents", "count"), v)
		}
	})

	t.Run("Listener", func(t *testing.T) {
		conn := e2e.MustConnect(t, c.DatabaseURL)
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		defer cancel()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'parley-listener'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("terminated %d listener backends (%v), want 1", n, err)
		}
		r.WaitMetric(t, reconnects, 1, wait)
		r.WaitMetric(t, connected, 1, wait)
	})

	t.Run("PoolAndRuntime", func(t *testing.T) {
		m := r.Metrics(t)
		for series, min := range map[string]float64{
			"parley_db_pool_max_connections":               24,
			`parley_db_pool_connections{state="idle"}`:     0,
			`parley_db_pool_connections{state="acquired"}`: 0,
			"parley_db_pool_opened_connections_total":      1,
			"go_goroutines":                 1,
			"go_memstats_heap_inuse_bytes":  1,
			"process_resident_memory_bytes": 1,
			"process_cpu_seconds_total":     0,
			"process_open_fds":              1,
		} {
			if v, ok := m[series]; !ok || v < min {
				t.Errorf("%s = %v (present %v), want at least %v", series, v, ok, min)
			}
		}
		if a0, a1 := before["parley_db_pool_acquires_total"], m["parley_db_pool_acquires_total"]; a1 <= a0 {
			t.Errorf("pool acquires did not move: %v then %v", a0, a1)
		}
	})
}
