package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStat is what the pool collector reads; *pgxpool.Stat has it.
type PoolStat interface {
	MaxConns() int32
	AcquiredConns() int32
	IdleConns() int32
	ConstructingConns() int32
	AcquireCount() int64
	AcquireDuration() time.Duration
	EmptyAcquireCount() int64
	EmptyAcquireWaitTime() time.Duration
	CanceledAcquireCount() int64
	NewConnsCount() int64
}

// poolCollector reports the database pool from one Stat per scrape.
type poolCollector struct {
	stat func() PoolStat

	max, conns, acquires, acquireSeconds, emptyAcquires, emptyWaitSeconds, canceled, opened *prometheus.Desc
}

func newPoolCollector(stat func() PoolStat) *poolCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("parley_db_pool_"+name, help, labels, nil)
	}
	return &poolCollector{
		stat:             stat,
		max:              d("max_connections", "The most connections the pool opens."),
		conns:            d("connections", "Open pool connections by state: acquired (in use), idle, constructing.", "state"),
		acquires:         d("acquires_total", "Connections acquired from the pool."),
		acquireSeconds:   d("acquire_seconds_total", "Time spent acquiring connections, waits included."),
		emptyAcquires:    d("empty_acquires_total", "Acquires that found no idle connection and had to wait for one or open one; rising fast means the pool is too small."),
		emptyWaitSeconds: d("empty_acquire_wait_seconds_total", "Time spent in acquires that found no idle connection."),
		canceled:         d("canceled_acquires_total", "Acquires given up because their context ended."),
		opened:           d("opened_connections_total", "Connections the pool opened."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.max, c.conns, c.acquires, c.acquireSeconds, c.emptyAcquires, c.emptyWaitSeconds, c.canceled, c.opened} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.max, float64(s.MaxConns()))
	gauge(c.conns, float64(s.AcquiredConns()), "acquired")
	gauge(c.conns, float64(s.IdleConns()), "idle")
	gauge(c.conns, float64(s.ConstructingConns()), "constructing")
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceled, float64(s.CanceledAcquireCount()))
	counter(c.opened, float64(s.NewConnsCount()))
}
