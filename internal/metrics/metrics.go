// Package metrics is Parley's Prometheus instrumentation, with
// prometheus/client_golang: a registry of each server's own (never the
// global one), the contract's parley_* metrics, the database pool, and the
// Go runtime and process collectors. The packages it watches do not import
// it: the HTTP layer, the hub and the listener report through small
// interfaces and callbacks of their own, which Metrics implements, and cmd
// wires them together.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley-chat/parley/internal/chat"
)

// latencyBuckets are the bounds of the latency histograms, in seconds: from
// 100 us, so calls that take well under a millisecond (most of Parley's)
// are told apart, to 10 s. client_golang's default starts at 5 ms.
func latencyBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// Sources are the live values Metrics reads at each scrape. Each may be
// nil when there is nothing to read.
type Sources struct {
	// Hub counts the rooms with live subscribers on this replica and the
	// subscribers.
	Hub func() (rooms, subscribers int)
	// ListenerConnected reports whether the LISTEN connection is up.
	ListenerConnected func() bool
	// Pool reads the database pool's statistics (pgxpool.Pool.Stat).
	Pool func() PoolStat
	// Streams reads the stream caps' figures.
	Streams func() StreamCaps
	// SignalsQueued counts the ephemeral events queued for subscribers.
	SignalsQueued func() int64
}

// StreamCaps are the stream caps' figures on this replica.
type StreamCaps struct {
	Open int // streams open (room and user streams, one each)
	// RefusedUser and RefusedReplica count streams refused since start at
	// the per-user cap (429) and at the replica's (503).
	RefusedUser, RefusedReplica uint64
}

// Metrics holds one server's metrics.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	fannedOut  prometheus.Counter
	lag        prometheus.Histogram
	ends       map[chat.StreamEnd]prometheus.Counter // read-only after New
	reconnects prometheus.Counter
	signals    *signalMetrics
}

// New registers every metric on a new registry.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_http_requests_total",
			Help: "Finished HTTP requests by operation (an operationId from openapi.yaml, a fixed name for the operational endpoints, or unmatched) and status. A stream counts when it ends.",
		}, []string{"operation", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "parley_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests by operation, from the first byte read to the last written; event streams are left out.",
			Buckets: latencyBuckets(),
		}, []string{"operation"}),
		fannedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_events_fanned_out_total",
			Help: "Events queued for this replica's stream subscribers: one per event and subscriber.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_event_delivery_lag_seconds",
			Help:    "Time from an event's commit (by the database's clock) to the end of its fan-out on this replica; clock skew below zero counts as 0.",
			Buckets: latencyBuckets(),
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_listener_reconnects_total",
			Help: "Times the LISTEN connection was back in place after it dropped.",
		}),
		ends: make(map[chat.StreamEnd]prometheus.Counter),
	}
	endsVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_stream_ends_total",
		Help: "Event streams ended, by reason.",
	}, []string{"reason"})
	// Every reason from the start, so a rate over any of them is defined.
	for _, r := range chat.StreamEnds() {
		m.ends[r] = endsVec.WithLabelValues(string(r))
	}
	m.signals = newSignalMetrics()
	m.reg.MustRegister(m.signals.collectors()...)
	m.reg.MustRegister(m.requests, m.durations, m.fannedOut, m.lag, m.reconnects, endsVec,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Hub != nil {
		m.reg.MustRegister(hubCollector(src.Hub))
	}
	if src.ListenerConnected != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_listener_connected",
			Help: "1 while this replica's LISTEN connection is up, else 0.",
		}, func() float64 {
			if src.ListenerConnected() {
				return 1
			}
			return 0
		}))
	}
	if src.SignalsQueued != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "parley_signals_fanned_out_total",
			Help: "Ephemeral events (typing, member.read, presence) queued for this replica's stream subscribers: one per event and subscriber. Durable events count in parley_events_fanned_out_total.",
		}, func() float64 { return float64(src.SignalsQueued()) }))
	}
	if src.Pool != nil {
		m.reg.MustRegister(newPoolCollector(src.Pool))
	}
	if src.Streams != nil {
		m.reg.MustRegister(streamCapsCollector(src.Streams))
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request counts a finished request and, unless it was a stream, its
// duration (httpapi.Observer).
func (m *Metrics) Request(operation string, status int, d time.Duration, stream bool) {
	m.requests.WithLabelValues(operation, strconv.Itoa(status)).Inc()
	if !stream {
		m.durations.WithLabelValues(operation).Observe(d.Seconds())
	}
}

// StreamEnded counts an ended stream (httpapi.Observer).
func (m *Metrics) StreamEnded(reason chat.StreamEnd) {
	if c, ok := m.ends[reason]; ok {
		c.Inc()
	}
}

// FannedOut counts queued events (stream.Observer).
func (m *Metrics) FannedOut(deliveries int) { m.fannedOut.Add(float64(deliveries)) }

// Delivered records an event's delivery lag, negative skew as 0
// (stream.Observer).
func (m *Metrics) Delivered(lag time.Duration) { m.lag.Observe(max(lag, 0).Seconds()) }

// ListenerReconnected counts a reconnect of the LISTEN connection.
func (m *Metrics) ListenerReconnected() { m.reconnects.Inc() }

// hubCollector reports the hub's size from one read per scrape.
func hubCollector(read func() (rooms, subscribers int)) prometheus.Collector {
	roomsDesc := prometheus.NewDesc("parley_stream_rooms", "Rooms with at least one live stream subscriber on this replica.", nil, nil)
	subsDesc := prometheus.NewDesc("parley_stream_subscribers", "Live stream subscribers on this replica.", nil, nil)
	return collectorFunc{descs: []*prometheus.Desc{roomsDesc, subsDesc}, collect: func(ch chan<- prometheus.Metric) {
		rooms, subs := read()
		ch <- prometheus.MustNewConstMetric(roomsDesc, prometheus.GaugeValue, float64(rooms))
		ch <- prometheus.MustNewConstMetric(subsDesc, prometheus.GaugeValue, float64(subs))
	}}
}

// streamCapsCollector reports the stream caps from one read per scrape.
func streamCapsCollector(read func() StreamCaps) prometheus.Collector {
	openDesc := prometheus.NewDesc("parley_streams_open", "Event streams open on this replica (room and user streams, one each), as the stream caps count them.", nil, nil)
	refusedDesc := prometheus.NewDesc("parley_stream_refusals_total", "Event streams refused at a cap: user (PARLEY_STREAMS_PER_USER, 429) or replica (PARLEY_MAX_STREAMS, 503).", []string{"cap"}, nil)
	return collectorFunc{descs: []*prometheus.Desc{openDesc, refusedDesc}, collect: func(ch chan<- prometheus.Metric) {
		st := read()
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(st.Open))
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(st.RefusedUser), "user")
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(st.RefusedReplica), "replica")
	}}
}

// collectorFunc is a collector of fixed descriptions whose values are read
// at each scrape.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
