package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured.
type Report struct {
	Config  string    `json:"config"`
	Started time.Time `json:"started"`
	// Load averages (1, 5, 15 min) at the start, once the streams were
	// open, and at the end: the box may be shared.
	LoadStart      string  `json:"load_start"`
	LoadOpen       string  `json:"load_open"`
	LoadEnd        string  `json:"load_end"`
	OpenFilesLimit uint64  `json:"open_files_limit"`
	SetupSeconds   float64 `json:"setup_seconds"`
	OpenSeconds    float64 `json:"open_seconds"`

	Streams struct {
		Wanted int `json:"wanted"`
		Opened int `json:"opened"`
		// EndedEarly counts streams the server ended during the run.
		EndedEarly int `json:"ended_early"`
	} `json:"streams"`
	Posts struct {
		OK        int64   `json:"ok"`
		Failed    int64   `json:"failed"`
		PerSecond float64 `json:"per_second"`
		Latency   Latency `json:"latency"`
	} `json:"posts"`
	Deliveries struct {
		// Expected is what the open streams should have received: every
		// event of their room after they went live.
		Expected   int64   `json:"expected"`
		Received   int64   `json:"received"`
		PerSecond  float64 `json:"per_second"`
		Lost       int64   `json:"lost"`
		Duplicated int64   `json:"duplicated"`
		OutOfOrder int64   `json:"out_of_order"`
		Latency    Latency `json:"latency"`
	} `json:"deliveries"`
	Errors   map[string]int64 `json:"errors"`
	Replicas []ReplicaReport  `json:"replicas"`
}

// ReplicaReport is one replica's share and memory.
type ReplicaReport struct {
	URL     string `json:"url"`
	PID     int    `json:"pid,omitempty"`
	Streams int    `json:"streams"`
	// RSS in KiB before the streams opened, once open (after Settle),
	// and at the end.
	RSSBeforeKiB int64 `json:"rss_before_kib,omitempty"`
	RSSOpenKiB   int64 `json:"rss_open_kib,omitempty"`
	RSSEndKiB    int64 `json:"rss_end_kib,omitempty"`
	// KiBPerStream is (open - before) / streams.
	KiBPerStream float64 `json:"kib_per_stream,omitempty"`
}

// OK reports whether every stream opened, every post was accepted and every
// delivery checked out. A post the server refused (a 503 when the box
// stalls, a 429 when the limits are too low for the load) fails the run: its
// figures were taken under errors.
func (r *Report) OK() bool {
	d := r.Deliveries
	return r.Streams.Opened == r.Streams.Wanted && r.Streams.EndedEarly == 0 && r.Posts.Failed == 0 &&
		d.Lost == 0 && d.Duplicated == 0 && d.OutOfOrder == 0 && d.Received == d.Expected
}

func summarize(c *Config) string {
	load := "no posts"
	switch {
	case c.Rate > 0 && c.Duration > 0:
		load = fmt.Sprintf("%g posts/s open loop for %s", c.Rate, c.Duration)
	case c.Posters > 0 && c.Duration > 0:
		load = fmt.Sprintf("%d posters closed loop for %s", c.Posters, c.Duration)
	}
	return fmt.Sprintf("%d %s streams over %d rooms on %d replicas, %d streams per user, %s",
		c.Streams, c.Kind, c.Rooms, len(c.URLs), c.StreamsPerUser, load)
}

func (b *bench) fill(rep *Report, postTime time.Duration, before, open, end []int64) {
	rep.Streams.Wanted = b.cfg.Streams
	perReplica := make([]int, len(b.cfg.URLs))
	d := &rep.Deliveries
	for _, s := range b.streams {
		if s == nil {
			continue
		}
		rep.Streams.Opened++
		perReplica[s.replica]++
		final := b.plan.rooms[s.room].finalSeq()
		d.Expected += final - s.startSeq
		d.Received += s.received
		d.Lost += s.lost
		if last := s.lastSeq.Load(); last < final {
			d.Lost += final - last
		}
		d.Duplicated += s.duplicated
		d.OutOfOrder += s.disordered
		if s.ended != nil && !strings.Contains(s.ended.Error(), "use of closed network connection") {
			rep.Streams.EndedEarly++
			b.st.fail("stream ended: " + errClass(s.ended))
		}
	}
	rep.Posts.OK, rep.Posts.Failed = b.st.posted.Load(), b.st.postFailed.Load()
	if postTime > 0 {
		rep.Posts.PerSecond = round1(float64(rep.Posts.OK) / postTime.Seconds())
		d.PerSecond = round1(float64(d.Received) / postTime.Seconds())
	}
	rep.Posts.Latency = b.st.post.summary()
	d.Latency = b.st.delivery.summary()
	b.st.mu.Lock()
	rep.Errors = maps.Clone(b.st.errors)
	b.st.mu.Unlock()
	for i, u := range b.cfg.URLs {
		rr := ReplicaReport{URL: u, Streams: perReplica[i], RSSBeforeKiB: before[i], RSSOpenKiB: open[i], RSSEndKiB: end[i]}
		if i < len(b.cfg.PIDs) {
			rr.PID = b.cfg.PIDs[i]
		}
		if rr.Streams > 0 && before[i] > 0 && open[i] > 0 {
			rr.KiBPerStream = round1(float64(open[i]-before[i]) / float64(rr.Streams))
		}
		rep.Replicas = append(rep.Replicas, rr)
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// WriteTable writes the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	lat := func(l Latency) string {
		return fmt.Sprintf("p50 %.2f\tp90 %.2f\tp99 %.2f\tp99.9 %.2f\tmax %.2f ms", l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	p("run\t%s", r.Config)
	p("started\t%s (load %s; streams open: %s; end: %s)", r.Started.Format(time.RFC3339), r.LoadStart, r.LoadOpen, r.LoadEnd)
	p("setup\t%.1f s; streams opened in %.1f s (open-file limit %d)", r.SetupSeconds, r.OpenSeconds, r.OpenFilesLimit)
	p("streams\t%d of %d open, %d ended early", r.Streams.Opened, r.Streams.Wanted, r.Streams.EndedEarly)
	p("posts\t%d ok, %d failed, %.1f/s", r.Posts.OK, r.Posts.Failed, r.Posts.PerSecond)
	p("post latency\t%s", lat(r.Posts.Latency))
	d := r.Deliveries
	p("deliveries\t%d of %d, %.1f/s; lost %d, duplicated %d, out of order %d", d.Received, d.Expected, d.PerSecond, d.Lost, d.Duplicated, d.OutOfOrder)
	p("delivery latency\t%s", lat(d.Latency))
	if len(r.Errors) == 0 {
		p("errors\tnone")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		p("errors\t%s: %d", k, r.Errors[k])
	}
	for _, rr := range r.Replicas {
		if rr.RSSOpenKiB == 0 {
			p("replica\t%s: %d streams", rr.URL, rr.Streams)
			continue
		}
		p("replica\t%s (pid %d): %d streams, RSS %.1f -> %.1f MiB open, %.1f MiB at end: %.1f KiB per stream",
			rr.URL, rr.PID, rr.Streams, float64(rr.RSSBeforeKiB)/1024, float64(rr.RSSOpenKiB)/1024, float64(rr.RSSEndKiB)/1024, rr.KiBPerStream)
	}
	verdict := "OK: every stream open, every post accepted, nothing lost, duplicated or out of order"
	if !r.OK() {
		verdict = "FAILED: see streams, posts, errors and deliveries above"
	}
	p("result\t%s", verdict)
	return tw.Flush()
}
