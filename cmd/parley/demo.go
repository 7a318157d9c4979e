package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/parley-chat/parley/internal/demo"
)

// runDemo runs "parley demo [-addr a] [-api url]": the browser demo on its
// own origin, calling the API at -api. The API must allow the demo's
// origin in PARLEY_CORS_ORIGINS (make run allows http://localhost:8081 and
// http://127.0.0.1:8081).
func runDemo(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: parley demo [flags]   (serve the browser demo; the API must allow its origin in PARLEY_CORS_ORIGINS)")
		fs.PrintDefaults()
	}
	var errs []error
	ef := envFlags{fs: fs, getenv: getenv, errs: &errs}
	var addr, api string
	ef.str(&addr, "addr", "PARLEY_DEMO_ADDR", ":8081", "listen address of the demo page")
	ef.str(&api, "api", "PARLEY_DEMO_API", "http://localhost:8080", "the Parley API the page calls (its origin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if err := errors.Join(errs...); err != nil {
		return usageError(err.Error())
	}
	h, err := demo.Handler(api)
	if err != nil {
		return usageError("-api: " + err.Error())
	}
	logger := newLogger(stderr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("parley demo serving", "addr", ln.Addr().String(), "api", api)
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
