// Command withpg runs a command with PARLEY_TEST_DATABASE_URL naming a
// throwaway Postgres cluster, so that all the test binaries of one
// go test ./... share one server instead of starting one each:
//
//	go run ./internal/localpg/withpg -- go test ./...
//
// If PARLEY_TEST_DATABASE_URL is already set, the command just runs. Else
// withpg starts a cluster in a fresh temp dir, runs the command, then stops
// the cluster and deletes it, also on SIGINT or SIGTERM, and exits with the
// command's exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/parley-chat/parley/internal/localpg"
)

const envURL = "PARLEY_TEST_DATABASE_URL"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("cmd", "withpg")
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg -- command [args...]")
		return 2
	}

	// Take the signals from now on: a Ctrl-C reaches the command too (it is
	// in our process group) and we clean up once it has exited.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	env := os.Environ()
	if os.Getenv(envURL) == "" {
		startCtx, stopStart := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		cluster, err := startCluster(startCtx, logger)
		interrupted := startCtx.Err() != nil
		stopStart()
		if err != nil {
			logger.Error("start postgres", "err", err)
			return 1
		}
		defer func() {
			if err := cluster.Stop(); err != nil {
				logger.Error("stop postgres", "err", err)
			}
		}()
		if interrupted {
			return 130
		}
		env = append(env, envURL+"="+cluster.URL("postgres"))
	}
	return runCommand(args, env, signals, logger)
}

func startCluster(ctx context.Context, logger *slog.Logger) (*localpg.Cluster, error) {
	dir, err := os.MkdirTemp("", "parley-withpg-")
	if err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	// Let the postgres user reach the cluster when we run as root; the
	// cluster's own directory inside stays private.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	cluster, err := localpg.Start(ctx, dir, logger, localpg.Throwaway())
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	logger.Info("postgres ready", "url", cluster.URL("postgres"))
	return cluster, nil
}

// runCommand runs the command with our stdio and returns its exit code,
// passing on SIGINT and SIGTERM.
func runCommand(args, env []string, signals <-chan os.Signal, logger *slog.Logger) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		logger.Error("start command", "err", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return exitErr.ExitCode()
			}
			if err != nil {
				logger.Error("run command", "err", err)
				return 1
			}
			return 0
		}
	}
}
