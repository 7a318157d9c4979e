package httpapi

import (
	"fmt"
	"net/http"
	"runtime"
	"sort"
)

// Gauge is one value /metrics reports.
type Gauge struct {
	Name, Help string
	Value      float64
}

// metrics serves the Prometheus text format: the replica's own gauges plus
// the Go runtime's goroutines and heap.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauges := []Gauge{
		{"go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine())},
		{"go_memstats_heap_inuse_bytes", "Bytes in in-use heap spans.", float64(ms.HeapInuse)},
		{"go_memstats_heap_alloc_bytes", "Bytes of allocated heap objects.", float64(ms.HeapAlloc)},
	}
	if s.Gauges != nil {
		gauges = append(gauges, s.Gauges()...)
	}
	sort.Slice(gauges, func(i, j int) bool { return gauges[i].Name < gauges[j].Name })
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	for _, g := range gauges {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", g.Name, g.Help, g.Name, g.Name, g.Value)
	}
}
