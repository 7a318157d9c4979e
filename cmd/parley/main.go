// Command parley is the Parley chat server: serve, migrate, openapi,
// version, healthcheck, and the browser demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `parley: a multi-room chat API with live room streams.

Usage:
  parley serve [flags]              run the API (migrates the database first)
  parley migrate up|down|status     apply all, undo one, or list migrations
  parley openapi [3.0]              print the OpenAPI 3.1 document (3.0: the 3.0.3 downgrade)
  parley version                    print the version
  parley healthcheck [flags] URL    GET URL; exit 0 on a 200 (container health checks)
  parley demo [-addr :8081] [-api http://localhost:8080]
                                    serve the browser demo (the API must allow its origin in PARLEY_CORS_ORIGINS)
  parley help                       print this help

Configuration: flags or PARLEY_* environment variables (flags win); run
"parley serve -h" for the list. Without PARLEY_DATABASE_URL, Parley runs a
private Postgres cluster under PARLEY_DATA_DIR (default ./.parley).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], osGetenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	var err error
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve":
		err = serve(ctx, args[1:], getenv, stderr)
	case "migrate":
		err = migrate(ctx, args[1:], getenv, stdout, stderr)
	case "openapi":
		err = printOpenAPI(args[1:], stdout)
	case "version":
		err = printVersion(args[1:], stdout)
	case "healthcheck":
		err = healthcheck(ctx, args[1:], stdout, stderr)
	case "demo":
		err = runDemo(ctx, args[1:], getenv, stderr)
	default:
		fmt.Fprintf(stderr, "parley: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0 // "parley serve -h": the flag package printed the usage
	}
	if err != nil {
		fmt.Fprintf(stderr, "parley %s: %v\n", args[0], err)
		if errors.As(err, new(usageError)) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError is a mistake in the command line: exit status 2.
type usageError string

func (e usageError) Error() string { return string(e) }
