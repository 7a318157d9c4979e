// Command parley-bench is Parley's load tool: it drives replicas through the
// public API and SSE as real users do and reports latencies, rates, errors,
// losses and memory per stream. See internal/bench and `parley-bench -h`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/parley-chat/parley/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the load and writes the report; it returns the exit
// code: 0 when every check passed, 1 when one failed, 2 when the run could
// not be made.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("parley-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: parley-bench -urls http://127.0.0.1:8081,http://127.0.0.1:8082 [flags]")
		fmt.Fprintln(stderr, "Registers users, creates and joins rooms, opens streams, posts, checks every delivery and reports.")
		fs.PrintDefaults()
	}
	var cfg bench.Config
	urls := fs.String("urls", "http://127.0.0.1:8080", "comma-separated replica URLs measured (http://); streams and posts take turns over them")
	pids := fs.String("pids", "", "comma-separated process ids of those replicas, in the same order, to read their RSS (0 skips one)")
	fs.StringVar(&cfg.SetupURL, "setup-url", "", "replica taking registrations, rooms and joins (default: the first of -urls)")
	fs.IntVar(&cfg.Streams, "streams", 100, "streams to open")
	fs.IntVar(&cfg.Rooms, "rooms", 10, "rooms the streams are spread over")
	fs.IntVar(&cfg.StreamsPerUser, "streams-per-user", 25, "streams each user opens (all in one room)")
	fs.StringVar(&cfg.Kind, "kind", "room", "stream kind: room (GET /v1/rooms/{id}/events) or user (GET /v1/events)")
	fs.StringVar(&cfg.Auth, "auth", "query", "stream authentication: query (?access_token=) or header (Authorization)")
	fs.Float64Var(&cfg.Rate, "rate", 10, "posts per second over all rooms, open loop (0: closed loop with -posters)")
	fs.IntVar(&cfg.Posters, "posters", 0, "closed-loop posters, each posting as fast as it can into one room (with -rate 0)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to post (0: open the streams, measure memory, post nothing)")
	fs.IntVar(&cfg.BodyBytes, "body-bytes", 64, "message body size")
	fs.DurationVar(&cfg.Drain, "drain", 0, "how long to wait for deliveries after the last post (default 10s)")
	fs.DurationVar(&cfg.Settle, "settle", 0, "pause after the streams open before reading the replicas' RSS")
	fs.IntVar(&cfg.OpenConcurrency, "open-concurrency", 64, "streams being opened at once")
	fs.IntVar(&cfg.SetupConcurrency, "setup-concurrency", 8, "setup requests at once")
	sources := fs.String("source-addrs", "", "comma-separated local addresses (e.g. 127.0.0.2,127.0.0.3) to spread stream connections over")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	jsonOut := fs.String("json-out", "", "also write the report as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this file (it shares the machine with the replicas)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "parley-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.URLs = split(*urls)
	cfg.SourceAddrs = split(*sources)
	for _, p := range split(*pids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid < 0 {
			fmt.Fprintf(stderr, "parley-bench: -pids: %q is not a process id\n", p)
			return 2
		}
		cfg.PIDs = append(cfg.PIDs, pid)
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "parley-bench: -cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "parley-bench: -cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, cfg)
	if rep == nil {
		fmt.Fprintln(stderr, "parley-bench:", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = errors.Join(err, enc.Encode(rep))
	} else {
		err = errors.Join(err, rep.WriteTable(stdout))
	}
	if *jsonOut != "" {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		err = errors.Join(err, jerr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "parley-bench:", err)
		return 2
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
