// Package bench checks the load tool (internal/bench, cmd/parley-bench)
// against real replicas: a short run with a handful of streams must open
// them all, deliver every post to every stream of its room once and in
// order, and count what it did.
package bench

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/bench"
	"github.com/parley-chat/parley/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }

func TestRun(t *testing.T) {
	c := e2e.NewCluster(t)
	setup, a, b := c.MustStart(t), c.MustStart(t), c.MustStart(t)
	const streams, rooms, perUser = 24, 4, 3
	tests := []struct {
		name string
		cfg  bench.Config
	}{
		{"OpenLoop", bench.Config{Rate: 20, Duration: 2 * time.Second}},
		{"ClosedLoop", bench.Config{Posters: 2, Duration: time.Second, Auth: "header"}},
		{"UserStreams", bench.Config{Kind: "user", Rate: 20, Duration: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.URLs = []string{a.URL, b.URL}
			cfg.SetupURL = setup.URL
			cfg.PIDs = []int{a.PID(), b.PID()}
			cfg.Streams, cfg.Rooms, cfg.StreamsPerUser = streams, rooms, perUser
			cfg.Drain = 30 * time.Second // a loaded box delivers late, not never
			rep, err := bench.Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("run failed its checks: %+v", rep)
			}
			if rep.Streams.Opened != streams || len(rep.Errors) != 0 {
				t.Fatalf("opened %d of %d streams, errors %v", rep.Streams.Opened, streams, rep.Errors)
			}
			if rep.Posts.OK < 5 || rep.Posts.Failed != 0 {
				t.Fatalf("posts: %d ok, %d failed", rep.Posts.OK, rep.Posts.Failed)
			}
			// Every post reaches the streams of its room: streams/rooms each.
			d := rep.Deliveries
			if want := rep.Posts.OK * streams / rooms; d.Expected != want || d.Received != want {
				t.Fatalf("deliveries: %d received, %d expected, want %d (%d posts)", d.Received, d.Expected, want, rep.Posts.OK)
			}
			if d.Latency.Count != uint64(d.Received) || d.Latency.P50 <= 0 || d.Latency.Max < d.Latency.P99 {
				t.Fatalf("delivery latency %+v for %d deliveries", d.Latency, d.Received)
			}
			if rep.Posts.Latency.Count != uint64(rep.Posts.OK) {
				t.Fatalf("post latency counted %d of %d posts", rep.Posts.Latency.Count, rep.Posts.OK)
			}
			for _, r := range rep.Replicas {
				if r.Streams != streams/2 || r.RSSBeforeKiB <= 0 || r.RSSOpenKiB <= 0 || r.RSSEndKiB <= 0 {
					t.Fatalf("replica %+v: want %d streams and its RSS", r, streams/2)
				}
			}
		})
	}
}
