package metrics

import (
	"math"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// signalMetrics are the ephemeral events' (postgres.SignalObserver).
type signalMetrics struct {
	transactions prometheus.Counter
	sent         prometheus.Counter
	bytes        prometheus.Counter
	dropped      *prometheus.CounterVec
	// usage holds the last pg_notification_queue_usage() read, as
	// float64 bits.
	usage atomic.Uint64
	gauge prometheus.GaugeFunc
}

func newSignalMetrics() *signalMetrics {
	m := &signalMetrics{
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signal_transactions_total",
			Help: "Notifying transactions this replica committed for ephemeral events (typing, member.read, presence): at most one per batch interval, plus presence claims.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signals_sent_total",
			Help: "Ephemeral events this replica announced to every replica.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_signal_bytes_total",
			Help: "Bytes of NOTIFY payload this replica sent for ephemeral events.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_signals_dropped_total",
			Help: "Ephemeral events this replica did not announce, by reason: coalesced (typing within 2 s), backlog, queue_full (the notification queue is too full), failed (the database refused the transaction).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"coalesced", "backlog", "queue_full", "failed"} {
		m.dropped.WithLabelValues(r)
	}
	return m
}

func (m *signalMetrics) collectors() []prometheus.Collector {
	m.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_notification_queue_usage",
		Help: "The fill of Postgres's notification queue (pg_notification_queue_usage(), 0 to 1) at this replica's last signal batch. Above 0.5 typing and read receipts are dropped; at 1 every notifying commit, posts included, fails.",
	}, func() float64 { return math.Float64frombits(m.usage.Load()) })
	return []prometheus.Collector{m.transactions, m.sent, m.bytes, m.dropped, m.gauge}
}

// SignalsSent counts a committed signal transaction
// (postgres.SignalObserver).
func (m *Metrics) SignalsSent(signals, _, bytes int) {
	m.signals.transactions.Inc()
	m.signals.sent.Add(float64(signals))
	m.signals.bytes.Add(float64(bytes))
}

// SignalsDropped counts signals not sent (postgres.SignalObserver).
func (m *Metrics) SignalsDropped(reason string, n int) {
	if n > 0 {
		m.signals.dropped.WithLabelValues(reason).Add(float64(n))
	}
}

// NotificationQueueUsage records the queue's fill (postgres.SignalObserver).
func (m *Metrics) NotificationQueueUsage(usage float64) {
	m.signals.usage.Store(math.Float64bits(usage))
}
