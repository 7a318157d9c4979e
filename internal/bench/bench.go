// Package bench is Parley's load tool (cmd/parley-bench): it drives one or
// more replicas through the public HTTP API and SSE as real users do,
// registers users, creates and joins rooms, opens many room or user
// streams, posts at a fixed rate (open loop) or as fast as a number of
// posters can (closed loop), checks every delivery for loss, duplication and
// order, and reports latencies, rates, errors and the replicas' memory per
// stream.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run.
type Config struct {
	// URLs are the replicas measured: streams and posts take turns over them.
	URLs []string
	// SetupURL takes registrations, rooms and joins (default URLs[0]).
	SetupURL string
	// PIDs are the replicas' process ids, in the order of URLs (0: not
	// measured), for their memory per stream.
	PIDs []int

	Streams        int
	Rooms          int
	StreamsPerUser int
	// Kind is "room" (GET /v1/rooms/{id}/events) or "user" (GET /v1/events).
	Kind string
	// Auth is how streams authenticate: "query" (?access_token=) or "header".
	Auth string

	// Rate is posts per second over all rooms, in turn (open loop). With
	// Rate 0, Posters post as fast as they can (closed loop), each in one room.
	Rate     float64
	Posters  int
	Duration time.Duration
	// BodyBytes pads message bodies to this size.
	BodyBytes int
	// Drain is how long to wait after the last post for deliveries.
	Drain time.Duration
	// Settle is the pause after the streams open before their memory is read.
	Settle time.Duration

	OpenConcurrency  int
	SetupConcurrency int
	// SourceAddrs are local addresses to spread stream connections over.
	SourceAddrs []string
	// Progress, when set, receives a progress line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
}

func (c *Config) defaults() error {
	if len(c.URLs) == 0 {
		return errors.New("no replica URLs")
	}
	for _, u := range append([]string{c.SetupURL}, c.URLs...) {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			return fmt.Errorf("replica url %q: not an absolute URL", u)
		}
	}
	if c.SetupURL == "" {
		c.SetupURL = c.URLs[0]
	}
	if len(c.PIDs) > 0 && len(c.PIDs) != len(c.URLs) {
		return fmt.Errorf("%d pids for %d urls: give one per url (0 for none)", len(c.PIDs), len(c.URLs))
	}
	if c.Streams < 1 || c.Rooms < 1 || c.Rooms > c.Streams {
		return fmt.Errorf("need 1 <= rooms (%d) <= streams (%d)", c.Rooms, c.Streams)
	}
	var err error
	if c.Kind, err = oneOf("stream kind", c.Kind, "room", "user"); err != nil {
		return err
	}
	if c.Auth, err = oneOf("auth", c.Auth, "query", "header"); err != nil {
		return err
	}
	if c.Rate < 0 || c.Posters < 0 || c.Duration < 0 {
		return errors.New("rate, posters and duration must not be negative")
	}
	if c.StreamsPerUser <= 0 {
		c.StreamsPerUser = 25
	}
	if c.OpenConcurrency <= 0 {
		c.OpenConcurrency = 64
	}
	if c.SetupConcurrency <= 0 {
		c.SetupConcurrency = 8
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	c.BodyBytes = max(c.BodyBytes, 0)
	return nil
}

// oneOf checks that value is one of allowed; empty is the first.
func oneOf(what, value string, allowed ...string) (string, error) {
	if value == "" {
		return allowed[0], nil
	}
	if !slices.Contains(allowed, value) {
		return "", fmt.Errorf("%s %q: want one of %s", what, value, strings.Join(allowed, ", "))
	}
	return value, nil
}

// stats are the counters every goroutine of the run adds to.
type stats struct {
	deliveries atomic.Int64
	delivery   histogram // publish to receive
	posted     atomic.Int64
	postFailed atomic.Int64
	post       histogram // post request to response

	mu     sync.Mutex
	errors map[string]int64
}

func (s *stats) fail(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors[what]++
}

type bench struct {
	cfg    Config
	plan   *plan
	http   *http.Client
	dialer *dialer
	st     stats

	streams []*stream
}

// Run runs one load test and reports it. The report is returned even when
// checks failed (Report.OK says); an error means the run could not be made.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	limit, err := raiseOpenFiles()
	if err != nil {
		return nil, err
	}
	// Streams, posting connections, and some slack.
	if need := uint64(cfg.Streams) + 256; need > limit {
		return nil, fmt.Errorf("%d streams need about %d open files, the limit is %d", cfg.Streams, need, limit)
	}
	p, err := newPlan(&cfg)
	if err != nil {
		return nil, err
	}
	d, err := newDialer(cfg.SourceAddrs)
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, plan: p, dialer: d, st: stats{errors: map[string]int64{}}}
	b.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     time.Minute,
	}}
	defer b.http.CloseIdleConnections()
	rep := &Report{Config: summarize(&cfg), Started: time.Now().UTC(), LoadStart: loadAvg(), OpenFilesLimit: limit}

	t := time.Now()
	if err := b.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	rep.SetupSeconds = seconds(time.Since(t))
	rssBefore := b.rss()

	t = time.Now()
	b.openStreams(ctx)
	defer b.closeStreams()
	rep.OpenSeconds = seconds(time.Since(t))
	if cfg.Settle > 0 {
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
		}
	}
	rssOpen := b.rss()
	rep.LoadOpen = loadAvg()

	var wg sync.WaitGroup
	for _, s := range b.streams {
		if s != nil {
			wg.Go(func() { s.run(&b.st) })
		}
	}
	stopProgress := b.progress(len(b.openCount()))

	t = time.Now()
	b.post(ctx)
	postTime := time.Since(t)
	b.drain(ctx)
	stopProgress()
	rep.LoadEnd = loadAvg()
	rssEnd := b.rss()
	b.closeStreams()
	wg.Wait()

	b.fill(rep, postTime, rssBefore, rssOpen, rssEnd)
	return rep, ctx.Err()
}

func (b *bench) openCount() []*stream {
	var open []*stream
	for _, s := range b.streams {
		if s != nil {
			open = append(open, s)
		}
	}
	return open
}

// streamPath is the stream request of stream i.
func (b *bench) streamPath(i int) string {
	if b.cfg.Kind == "user" {
		return "/v1/events"
	}
	return "/v1/rooms/" + b.plan.rooms[b.plan.users[b.plan.streamUser[i]].room].id + "/events"
}

// openStreams opens every stream, OpenConcurrency at a time, each up to
// its ready event. A stream that does not open is counted by its error.
func (b *bench) openStreams(ctx context.Context) {
	b.streams = make([]*stream, b.cfg.Streams)
	sem := make(chan struct{}, b.cfg.OpenConcurrency)
	var wg sync.WaitGroup
	for i := range b.streams {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			u := b.plan.users[b.plan.streamUser[i]]
			rep := b.plan.streamReplica[i]
			octx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			s, last, err := openStream(octx, b.dialer, b.cfg.URLs[rep], b.streamPath(i), u.token, b.cfg.Auth)
			if err != nil {
				var eo errOpen
				if errors.As(err, &eo) {
					b.st.fail(fmt.Sprintf("open stream: status %d", eo.status))
				} else {
					b.st.fail("open stream: " + errClass(err))
				}
				return
			}
			s.room, s.replica = u.room, rep
			// Nothing is posted while streams open: the stream starts
			// after the room's last seq as setup left it.
			s.startSeq = b.plan.rooms[u.room].lastSeq
			if last > 0 && last != s.startSeq {
				b.st.fail("open stream: ready last_seq differs from the room's")
			}
			s.lastSeq.Store(s.startSeq)
			b.streams[i] = s
		})
	}
	wg.Wait()
}

func (b *bench) closeStreams() {
	for _, s := range b.streams {
		if s != nil {
			_ = s.conn.Close()
		}
	}
}

// drain waits until every open stream has received its room's last post,
// or until Drain passes.
func (b *bench) drain(ctx context.Context) {
	deadline := time.Now().Add(b.cfg.Drain)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		behind := false
		for _, s := range b.streams {
			if s != nil && !s.finished.Load() && s.lastSeq.Load() < b.plan.rooms[s.room].finalSeq() {
				behind = true
				break
			}
		}
		if !behind {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// rss reads each replica's resident set, in KiB (0 when unknown).
func (b *bench) rss() []int64 {
	out := make([]int64, len(b.cfg.URLs))
	for i, pid := range b.cfg.PIDs {
		if pid <= 0 {
			continue
		}
		kib, err := RSSKiB(pid)
		if err != nil {
			b.st.fail("rss: " + errClass(err))
			continue
		}
		out[i] = kib
	}
	return out
}

// progress prints a line every ProgressEvery until the returned func is called.
func (b *bench) progress(open int) (stop func()) {
	if b.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		tick := time.NewTicker(b.cfg.ProgressEvery)
		defer tick.Stop()
		var lastD, lastP int64
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				d, p := b.st.deliveries.Load(), b.st.posted.Load()
				dt := now.Sub(last).Seconds()
				fmt.Fprintf(b.cfg.Progress, "[%5.1fs] streams %d  posts %d (%.0f/s, %d failed)  deliveries %d (%.0f/s)  p99 %.2f ms  load %s\n",
					now.Sub(start).Seconds(), open, p, float64(p-lastP)/dt, b.st.postFailed.Load(),
					d, float64(d-lastD)/dt, float64(b.st.delivery.Quantile(0.99))/1e6, loadAvg())
				lastD, lastP, last = d, p, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *room) finalSeq() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.final
}

func (r *room) posted(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.final = max(r.final, seq)
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
