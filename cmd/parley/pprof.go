package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPprof serves net/http/pprof on PARLEY_PPROF_ADDR, on a mux and
// listener of its own (never the API's, and not the default mux), so
// replicas can be profiled under load (make bench BENCH_PPROF=1).
func (m *Main) startPprof(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", m.Config.PprofAddr)
	if err != nil {
		return fmt.Errorf("PARLEY_PPROF_ADDR: listen on %s: %w", m.Config.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
	go func() { _ = m.pprof.Serve(ln) }()
	m.Logger.Info("pprof serving", "addr", ln.Addr().String())
	return nil
}
